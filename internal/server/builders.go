package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/patternmatcher"

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
	"github.com/runtimebuild/runtimebuild/internal/buildkit"
	"github.com/runtimebuild/runtimebuild/internal/dockerfile"
	"github.com/runtimebuild/runtimebuild/internal/preflight"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
	"github.com/runtimebuild/runtimebuild/internal/targz"
)

// CheckBuilder builds nothing: it unpacks the upload and checks it as a builder would (the
// Dockerfile parses, its sources exist; an image archive's manifest names files it holds).
type CheckBuilder struct {
	Name string // how its messages name it (the setting that chose it); "the check builder" when empty
}

func (c CheckBuilder) name() string {
	if c.Name == "" {
		return "the check builder"
	}
	return c.Name
}

// Build checks the job and says that nothing was built.
func (c CheckBuilder) Build(ctx context.Context, job *Job, log io.Writer) (string, error) {
	dir, err := job.Unpack(ctx)
	if err != nil {
		return "", fmt.Errorf("unpacking: %w", err)
	}
	if job.Kind == KindImage {
		err = checkImage(dir)
	} else {
		err = checkContext(dir, job.Target, log)
	}
	if err != nil {
		return "", err
	}
	fmt.Fprintf(log, "check builder: the %s is sound; nothing was built (%s)\n", job.Kind, c.name())
	return job.TargetImage, nil
}

// ImageExists is always false: the check builder keeps no images.
func (CheckBuilder) ImageExists(context.Context, string) (bool, error) { return false, nil }

// Note says what the check builder's SUCCESS means.
func (c CheckBuilder) Note() string { return "checked only: " + c.name() + " builds nothing" }

// checksOnly is a builder whose SUCCESS built nothing (CheckBuilder): the build's status says
// checked_only, with its Note as the message (which older clients read).
type checksOnly interface{ Note() string }

func checkContext(dir, target string, log io.Writer) error {
	df, err := readInside(dir, "Dockerfile", 16<<20)
	if err != nil {
		return fmt.Errorf("reading the Dockerfile: %w", err)
	}
	files, err := contextFiles(dir)
	if err != nil {
		return err
	}
	rep := preflight.Check(df, preflight.Context{Files: files, Target: target, TargetSetting: "target"})
	if rep.OK() {
		fmt.Fprintf(log, "Dockerfile stages: %s\n", strings.Join(rep.Stages, ", "))
		return nil
	}
	var msgs []string
	for _, p := range rep.Problems {
		fmt.Fprintln(log, p)
		msgs = append(msgs, p.String())
	}
	return errors.New(strings.Join(msgs, "; "))
}

// contextFiles lists the unpacked context as a builder sees it: without what its own ignore
// file excludes (read as the client reads it, through an os.Root: no link out is followed).
func contextFiles(dir string) ([]string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	ignore, err := buildctx.ReadIgnore(root.FS(), "Dockerfile")
	if err != nil {
		return nil, err
	}
	pm, err := patternmatcher.New(ignore.Strings())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ignore.Path, err)
	}
	var files []string
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		if ok, _ := pm.MatchesOrParentMatches(p); ok {
			return nil
		}
		files = append(files, p)
		return nil
	})
	return files, err
}

// checkImage checks that manifest.json parses and names files the archive holds.
func checkImage(dir string) error {
	b, err := readInside(dir, "manifest.json", targz.MaxManifest)
	if err != nil {
		return err
	}
	manifest, err := targz.ParseManifest(b)
	if err != nil {
		return err
	}
	for _, f := range manifest.Files() {
		if _, err := statInside(dir, f); err != nil {
			return fmt.Errorf("manifest.json names %s, which the archive does not hold", f)
		}
	}
	return nil
}

// The builders at the seam.
var (
	_ Builder        = CheckBuilder{}
	_ Builder        = (*DockerBuilder)(nil)
	_ ImageDescriber = (*DockerBuilder)(nil)
	_ Builder        = (*BuildkitBuilder)(nil)
	_ ImageDescriber = (*BuildkitBuilder)(nil)
)

// solveFunc builds b, whose Dockerfile reads srcs, writing progress to log.
type solveFunc func(ctx context.Context, b buildkit.Build, srcs sources, log io.Writer) (buildkit.Report, error)

// solveJob unpacks the job's context, holds its Dockerfile to the trust boundary (guard) and
// builds its target stage (or, when the Dockerfile has no such stage, its last) with solve; the
// job then carries the build's telemetry.
func solveJob(ctx context.Context, job *Job, b buildkit.Build, log io.Writer, solve solveFunc) error {
	dir, err := job.Unpack(ctx)
	if err != nil {
		return fmt.Errorf("unpacking: %w", err)
	}
	srcs, model, err := guard(ctx, dir, job)
	if err != nil {
		return err
	}
	b.Target = chooseStage(model, job.Target, log)
	b.ContextDir = dir
	b.CredentialsFor = job.Trust.Registry()
	ref, err := name.ParseReference(job.TargetImage)
	if err != nil {
		return err
	}
	b.FrontendAttrs = stepCacheDomain(ref.Context().Name())
	rep, err := solve(ctx, b, srcs, log)
	job.Telemetry = telemetry(rep)
	return err
}

// telemetry is what a build's report tells the client.
func telemetry(rep buildkit.Report) *runtimeapi.Telemetry {
	return &runtimeapi.Telemetry{
		BuildSeconds: rep.Build.Seconds(), ExportSeconds: rep.ExportPush.Seconds(),
		CacheImportSeconds: rep.CacheImport.Seconds(), CacheExportSeconds: rep.CacheExport.Seconds(),
		StepsCached: rep.CachedSteps, StepsTotal: rep.Steps,
	}
}

// stepCacheDomain are the frontend options that keep the step cache of RUN steps per
// repository. BuildKit leaves a cache mount's id out of a step's cache key, so an identical
// RUN in another repository would be answered from the step cache with what the first
// repository's cache mount put in its output. The sandbox's host name is in every RUN step's
// key: one per repository (the cache mount namespace) keeps the keys apart, and the steps of
// one repository still meet theirs (and its registry cache).
func stepCacheDomain(repo string) map[string]string {
	return map[string]string{"build-arg:BUILDKIT_SANDBOX_HOSTNAME": cacheNamespace(repo)}
}

// guard reads what the unpacked Dockerfile fetches, holds it to the trust boundary
// (checkDockerfile) and writes back the Dockerfile it gives. The model it returns is the job's
// one parse: its stages are those of the Dockerfile written back.
func guard(ctx context.Context, dir string, job *Job) (sources, *dockerfile.Dockerfile, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return sources{}, nil, err
	}
	defer root.Close()
	src, err := root.ReadFile("Dockerfile")
	if err != nil {
		return sources{}, nil, fmt.Errorf("reading the Dockerfile: %w", err)
	}
	srcs, isolated, model, err := checkDockerfile(ctx, src, job)
	if err != nil {
		return sources{}, nil, err
	}
	if !bytes.Equal(isolated, src) {
		if err := root.WriteFile("Dockerfile", isolated, 0o644); err != nil {
			return sources{}, nil, fmt.Errorf("writing the Dockerfile: %w", err)
		}
	}
	return srcs, model, nil
}

// checkDockerfile parses the Dockerfile src, reads what it fetches, refuses a frontend of its
// own, bases with ONBUILD triggers and ADD sources on this server's networks (unless the
// operator allows them), and returns it with its cache mounts given the target repository's
// ids, and the model it parsed.
func checkDockerfile(ctx context.Context, src []byte, job *Job) (sources, []byte, *dockerfile.Dockerfile, error) {
	if err := checkFrontend(src); err != nil {
		return sources{}, nil, nil, err
	}
	d, err := dockerfile.Parse(src)
	if err != nil {
		return sources{}, nil, nil, fmt.Errorf("reading the Dockerfile: %w", err) // BuildKit's own parser: the builder would refuse it too
	}
	srcs := readSources(d)
	if err := checkOnBuild(ctx, srcs.Images, job.Trust); err != nil {
		return sources{}, nil, nil, err
	}
	if !job.Trust.PrivateURLs {
		if err := checkURLs(ctx, srcs.URLs, resolveHost, interfaceAddrs()); err != nil {
			if pe := (*PrivateURLError)(nil); errors.As(err, &pe) {
				pe.OptIn = job.Trust.PrivateURLsName
			}
			if ue := (*UncheckedSourceError)(nil); errors.As(err, &ue) {
				ue.OptIn = job.Trust.PrivateURLsName
			}
			return sources{}, nil, nil, err
		}
	}
	ref, err := name.ParseReference(job.TargetImage)
	if err != nil {
		return sources{}, nil, nil, err
	}
	isolated, err := isolateCacheMounts(src, d, ref.Context().Name())
	if err != nil {
		return sources{}, nil, nil, err
	}
	return srcs, isolated, d, nil
}

// chooseStage is the stage of model to build: the one the client named when the Dockerfile has
// it (as BuildKit names it), else "" (the last stage).
func chooseStage(model *dockerfile.Dockerfile, want string, log io.Writer) string {
	if want == "" {
		return ""
	}
	if i, err := model.Stage(want); err == nil {
		return model.Names[i]
	}
	fmt.Fprintf(log, "the Dockerfile has no stage %q: building its last stage\n", want)
	return ""
}
