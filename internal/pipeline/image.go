package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/docker"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/imageexport"
	"github.com/runtimebuild/runtimebuild/internal/outputdir"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// Image exports an existing image (docker pull + save, or from its registry), gzips it,
// uploads it to the Runtime API as TARGET_IMAGE (default: ref) with tags, and follows the build.
// timeout replaces BUILD_TIMEOUT when not zero.
func Image(ctx context.Context, client *runtimeapi.Client, api config.API, ex config.Export, githubOutput string, log *progress.Log, ref string, tags []string, timeout time.Duration) (Built, error) {
	if err := CheckImageReference(ref); err != nil {
		return Built{}, err
	}
	if timeout > 0 {
		api.BuildTimeout = timeout
	}
	if err := reach(ctx, client, api, false); err != nil { // before exporting: a wrong URL fails in seconds
		return Built{}, err
	}
	ctx, cancel := withBuildTimeout(ctx, api.BuildTimeout)
	defer cancel()
	src, how, err := imageSource(ctx, ex, log)
	if err != nil {
		return Built{}, err
	}
	run, err := outputdir.Open(ex.OutputDir) // another run's CLEAN_OUTPUT keeps the exported image
	if err != nil {
		return Built{}, fmt.Errorf("OUTPUT_DIR: %w", err)
	}
	defer run.Close()
	log.Infof("exporting %s (%s)", ref, how)
	start := time.Now()
	meter := log.Meter("exporting", -1, 0)
	archive, err := imageexport.WriteArchive(ctx, src, ref, ex.OutputDir, meter)
	meter.Done()
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled):
		return Built{}, &InterruptedError{While: "exporting " + ref, Advice: "nothing was sent"}
	case errors.Is(err, docker.ErrNoEngine):
		return Built{}, fmt.Errorf("%w; start the Docker engine, or set IMAGE_SOURCE=registry to read the image straight from its registry", err)
	default:
		return Built{}, settingError(err)
	}
	defer os.Remove(archive) // on every path: the image is on the server or the run failed
	if err := run.Hold(filepath.Base(archive)); err != nil {
		return Built{}, err
	}
	fi, err := os.Stat(archive)
	if err != nil {
		return Built{}, err
	}
	log.Infof("exported %s in %s", progress.Bytes(fi.Size()), time.Since(start).Round(time.Millisecond))
	target := cmp.Or(ex.TargetImage, ref)
	res := &result.Result{Tags: tags, BytesOut: fi.Size()}
	return submit(ctx, client, api, githubOutput, log, submission{
		Archive: archive, What: "the image " + ref, Format: runtimeapi.RawImage, TargetImage: target, Tags: tags,
		Result: res, ResultFor: filepath.Join(ex.OutputDir, "image-"+fileSafe.ReplaceAllString(ref, "_")+".tar.gz"),
	})
}

// CheckImageReference refuses what is no image reference before any work (exit 2).
func CheckImageReference(ref string) error {
	_, err := imageexport.ParseReference(ref)
	return settingError(err)
}

var fileSafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// imageSource picks IMAGE_SOURCE; auto means docker when an engine answers.
func imageSource(ctx context.Context, ex config.Export, log *progress.Log) (imageexport.Source, string, error) {
	registry := imageexport.Registry{Platform: ex.Platform}
	if ex.Source == "registry" {
		return registry, "from its registry, " + ex.Platform, nil
	}
	engine, err := newEngine(ex.Engine)
	if err != nil {
		return nil, "", err
	}
	if ex.Source == "docker" {
		return imageexport.Docker{Engine: engine, Pull: ex.Pull, Log: log}, "docker save", nil
	}
	if engine.Ping(ctx) == nil {
		return imageexport.Docker{Engine: engine, Pull: ex.Pull, Log: log}, "docker save; IMAGE_SOURCE=auto found an engine", nil
	}
	return registry, "from its registry, " + ex.Platform + "; IMAGE_SOURCE=auto found no Docker engine", nil
}

// newEngine is the Docker Engine of DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH.
func newEngine(e config.Engine) (*docker.Engine, error) {
	engine, err := docker.NewEngine(docker.EngineConfig{Host: e.Host, TLSVerify: e.TLSVerify, CertPath: e.CertPath})
	if err != nil {
		return nil, exitcode.AsUsage(fmt.Errorf("DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH: %w", err))
	}
	return engine, nil
}
