// Package targets holds the runtimebuild mage targets. Import it into any magefile with
//
//	//mage:import
//	_ "github.com/runtimebuild/runtimebuild/magefiles/targets"
//
// Each target reads the environment of INTERFACE.md, calls the internal packages and reports.
package targets

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/pipeline"
	"github.com/runtimebuild/runtimebuild/internal/progress"
)

// Context packs SOURCE_DIR into a reproducible build-context tar.gz whose root Dockerfile builds TARGET as it is; prints its path and sha256.
//
// Reads SOURCE_DIR, OUTPUT_DIR, OUTPUT_NAME, IMAGE_NAME, DOCKERFILE, DOCKERFILE_TEMPLATE, TARGET,
// BASE_IMAGE, BUILD_ARGS, GITHUB_REF, SDK_REF, CUSTOM_TAGS, TARGET_IMAGE, CLEAN_OUTPUT, SDK_SHA,
// GITHUB_SHA, SOURCE_DATE_EPOCH, INCLUDE, INCLUDE_UNTRACKED, ALLOW_SECRETS, PROGRESS and GITHUB_OUTPUT.
func Context(ctx context.Context) error {
	return run(func(cfg config.Config, log *progress.Log) error {
		packed, err := pipeline.Context(ctx, cfg, log)
		if err != nil {
			return err
		}
		log.Resultf("%s sha256:%s", packed.Archive.Path, packed.Archive.SHA256)
		return nil
	})
}

// run loads the configuration, runs job, and hands back an error that carries its exit code to
// mage (which prints it); under GitHub Actions the error is also an annotation.
func run(job func(config.Config, *progress.Log) error) error {
	cfg, err := config.Load(os.Getenv)
	if err == nil {
		err = job(cfg, progress.New(os.Stderr, cfg.Progress))
	}
	if err != nil && config.InGitHubActions(os.Getenv) {
		progress.GitHubError(os.Stdout, err)
	}
	return exitcode.ForMage(err)
}

// Upload sends the archive of context to the Runtime API /build, polls /build_status to the end and prints the image.
//
// Runs context first. Reads what context reads, and RUNTIME_API_URL, RUNTIME_API_KEY (required),
// ALLOW_INSECURE_HTTP, TARGET_IMAGE, UPLOAD_FORMAT, FORCE, POLL_INTERVAL and BUILD_TIMEOUT.
// After Ctrl-C or a timeout, `status <build_id>` follows the build again.
func Upload(ctx context.Context) error {
	return run(func(cfg config.Config, log *progress.Log) error {
		if _, err := pipeline.NewClient(cfg, log); err != nil {
			return err // before packing: the call is wrong
		}
		ctx := pipeline.HandOver(ctx) // context leaves its plan and archive here for upload
		mg.CtxDeps(ctx, Context)
		built, err := pipeline.Upload(ctx, cfg, log)
		if err != nil {
			return err
		}
		reportImage(log, built)
		return nil
	})
}

// All runs the whole pipeline: context, then upload; with no Runtime API configured it packs and says the upload was skipped.
//
// Reads what context and upload read; RUNTIME_API_URL or RUNTIME_API_KEY unset, or NO_UPLOAD=true,
// skips the upload.
func All(ctx context.Context) error {
	return run(func(cfg config.Config, log *progress.Log) error {
		if ok, why := pipeline.UploadConfigured(cfg); !ok {
			log.Infof("upload skipped (%s): packing only", why) // first, so that the archive is the last line
			mg.CtxDeps(ctx, Context)
			return nil
		}
		mg.CtxDeps(ctx, Upload)
		return nil
	})
}

// Status re-attaches to a build of the Runtime API and polls it to its end (after Ctrl-C, a CI timeout, a lost connection).
//
// Argument: the build ID that upload, all or image printed. Reads RUNTIME_API_URL, RUNTIME_API_KEY,
// ALLOW_INSECURE_HTTP, POLL_INTERVAL, BUILD_TIMEOUT, PROGRESS and GITHUB_OUTPUT.
func Status(ctx context.Context, buildID string) error {
	return run(func(cfg config.Config, log *progress.Log) error {
		client, err := pipeline.NewClient(cfg, log)
		if err != nil {
			return err
		}
		if strings.TrimSpace(buildID) == "" {
			return exitcode.Usagef("status needs a build ID: go run magefile.go status <build_id>")
		}
		built, err := pipeline.Follow(ctx, client, cfg, log, buildID, "")
		if err != nil {
			return err
		}
		reportImage(log, built)
		return nil
	})
}

func reportImage(log *progress.Log, b pipeline.Built) {
	if b.Skipped {
		log.Resultf("%s", b.Image)
		return
	}
	log.Resultf("%s (build %s)", b.Image, b.BuildID)
}

// Serve runs a local Runtime API on SERVE_ADDR that builds with BuildKit: the Docker engine's own, or a buildkitd (SERVE_BUILDER=buildkit).
//
// Reads SERVE_ADDR, SERVE_BUILDER, RUNTIME_API_KEY (the key clients must send) or SERVE_NO_AUTH
// (beyond loopback also SERVE_ALLOW_REMOTE_NO_AUTH), SERVE_REGISTRY_PREFIX, SERVE_WORKERS,
// SERVE_BUILD_TIMEOUT, SERVE_MAX_UPLOAD, DOCKER_HOST, and BUILDKIT_HOST with BUILDKIT_TLS_*.
// Ctrl-C or SIGTERM stops it.
func Serve(ctx context.Context) error {
	return run(func(cfg config.Config, log *progress.Log) error {
		return pipeline.Serve(ctx, cfg, log, nil)
	})
}

// Validate checks the Dockerfile against the build context without writing or sending anything: prints "ok" and the stages, or each problem as Dockerfile:LINE.
//
// Reads what context reads to select the files and render the Dockerfile.
func Validate(ctx context.Context) error {
	return run(func(cfg config.Config, log *progress.Log) error {
		rep, err := pipeline.Validate(ctx, cfg, log)
		if err != nil {
			return err
		}
		if !rep.OK() {
			return pipeline.ProblemsError(log, rep)
		}
		log.Resultf("ok: stages %s", strings.Join(rep.Stages, ", "))
		return nil
	})
}

// Image exports an existing image (docker pull + save, or from its registry), gzips it, uploads it and follows the build; flags -tags=a,b and -timeout=MINUTES.
//
// Argument: the image reference. Flags: -tags=a,b adds tags (mage reads words after the reference
// as more targets, so tags go in this flag); -timeout=MINUTES replaces BUILD_TIMEOUT. Reads
// RUNTIME_API_URL, RUNTIME_API_KEY, IMAGE_SOURCE, PLATFORM, PULL, TARGET_IMAGE, OUTPUT_DIR,
// POLL_INTERVAL, BUILD_TIMEOUT, PROGRESS and GITHUB_OUTPUT.
func Image(ctx context.Context, ref string, tags *string, timeout *int) error {
	return run(func(cfg config.Config, log *progress.Log) error {
		var extra []string
		if tags != nil {
			for _, t := range strings.Split(*tags, ",") {
				if t = strings.TrimSpace(t); t != "" {
					extra = append(extra, t)
				}
			}
		}
		var limit time.Duration
		if timeout != nil {
			if *timeout <= 0 {
				return exitcode.Usagef("-timeout=%d: want a positive number of minutes", *timeout)
			}
			limit = time.Duration(*timeout) * time.Minute
		}
		built, err := pipeline.Image(ctx, cfg, log, ref, extra, limit)
		if err != nil {
			return err
		}
		reportImage(log, built)
		return nil
	})
}
