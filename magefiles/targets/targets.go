// Package targets holds the runtimebuild mage targets. Import it into any magefile with
//
//	//mage:import
//	_ "github.com/runtimebuild/runtimebuild/magefiles/targets"
//
// Each target reads the environment (the README's Environment section), calls the internal
// packages and reports.
package targets

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/pipeline"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/version"
)

// The variables each target reads: only these are validated for it (a bad PULL must not stop
// context). A trailing * stands for any ending.
var (
	output        = []string{"PROGRESS", "GITHUB_OUTPUT"}
	contextReads  = append([]string{"SOURCE_DIR", "OUTPUT_DIR", "OUTPUT_NAME", "IMAGE_NAME", "BASE_IMAGE", "TARGET", "CUSTOM_TAGS", "CLEAN_OUTPUT", "SDK_SHA", "GITHUB_SHA", "SOURCE_DATE_EPOCH", "INCLUDE", "INCLUDE_UNTRACKED", "ALLOW_SECRETS", "DOCKERFILE", "DOCKERFILE_TEMPLATE", "BUILD_ARGS", "SDK_REF", "GITHUB_REF", "TARGET_IMAGE"}, output...)
	apiReads      = append([]string{"RUNTIME_API_URL", "RUNTIME_API_KEY", "ALLOW_INSECURE_HTTP", "POLL_INTERVAL", "BUILD_TIMEOUT"}, output...)
	uploadReads   = slices.Concat(contextReads, apiReads, []string{"TARGET_IMAGE", "UPLOAD_FORMAT", "FORCE"})
	allReads      = append(slices.Clone(uploadReads), "NO_UPLOAD")
	imageReads    = append(slices.Clone(apiReads), "IMAGE_SOURCE", "PLATFORM", "PULL", "TARGET_IMAGE", "OUTPUT_DIR")
	serveReads    = []string{"SERVE_*", "BUILDKIT_*", "RUNTIME_API_KEY", "PROGRESS"}
	validateReads = contextReads
	versionReads  = []string{"PROGRESS"}
	cancelReads   = []string{"RUNTIME_API_URL", "RUNTIME_API_KEY", "ALLOW_INSECURE_HTTP", "PROGRESS"}
)

// Context packs SOURCE_DIR into a reproducible build-context tar.gz whose root Dockerfile builds TARGET as it is; prints its path.
//
// Reads SOURCE_DIR, OUTPUT_DIR, OUTPUT_NAME, IMAGE_NAME, DOCKERFILE, DOCKERFILE_TEMPLATE, TARGET,
// BASE_IMAGE, BUILD_ARGS, GITHUB_REF, SDK_REF, CUSTOM_TAGS, TARGET_IMAGE, CLEAN_OUTPUT, SDK_SHA,
// GITHUB_SHA, SOURCE_DATE_EPOCH, INCLUDE, INCLUDE_UNTRACKED, ALLOW_SECRETS, PROGRESS and GITHUB_OUTPUT.
// Standard output gets the archive's path alone; its sha256 and sizes are on the summary line above.
func Context(ctx context.Context) error {
	return run(ctx, contextReads, func(ctx context.Context, cfg config.Config, log *progress.Log) error {
		start := time.Now()
		packed, err := pipeline.Context(ctx, cfg, log)
		if err != nil {
			return err
		}
		a := packed.Archive
		log.Infof("packed %d files, %s → %s in %.1fs: %s sha256:%s", a.Files, progress.Bytes(a.BytesIn), progress.Bytes(a.BytesOut),
			time.Since(start).Seconds(), a.Path, a.SHA256)
		if !isDependency(ctx) {
			log.Resultf("%s", a.Path)
		}
		return nil
	})
}

type dependencyKey struct{}

// asDependency marks ctx for a target run as another's dependency: its result is not the
// run's, so it prints no result line (upload's is the image, not context's archive).
func asDependency(ctx context.Context) context.Context {
	return context.WithValue(ctx, dependencyKey{}, true)
}

func isDependency(ctx context.Context) bool { return ctx.Value(dependencyKey{}) != nil }

// run loads the variables the target reads, runs job, and hands back an error that carries its
// exit code to mage (which prints it), its text escaped; under GitHub Actions the error is also
// an annotation. Ctrl-C and SIGTERM cancel job's context, clear the terminal's bar at once, and
// end the run with 130 or 143 once job has cleaned up.
func run(ctx context.Context, reads []string, job func(context.Context, config.Config, *progress.Log) error) error {
	cfg, err := config.LoadFor(os.Getenv, readsAny(reads))
	if err == nil {
		log := progress.New(os.Stderr, cfg.Progress).WithResults(os.Stdout)
		jobCtx, stop := interruptible(ctx, log)
		err = pipeline.Advise(job(jobCtx, cfg, log))
		if sig := stop(); sig != nil && err != nil && errors.Is(err, context.Canceled) {
			err = interrupted(err, sig)
		}
	}
	err = progress.EscapeError(err)
	if err != nil && config.InGitHubActions(os.Getenv) {
		progress.GitHubError(os.Stdout, err)
	}
	return exitcode.ForMage(err)
}

// readsAny matches a variable name against a target's list.
func readsAny(list []string) func(string) bool {
	return func(name string) bool {
		for _, v := range list {
			if v == name || (strings.HasSuffix(v, "*") && strings.HasPrefix(name, strings.TrimSuffix(v, "*"))) {
				return true
			}
		}
		return false
	}
}

// interrupted gives a run stopped by sig its exit code (130 for Ctrl-C, 143 for SIGTERM) and a
// last line that says what is left.
func interrupted(err error, sig os.Signal) error {
	code := exitCodeOf(sig)
	var ie *pipeline.InterruptedError
	if !errors.As(err, &ie) {
		err = &pipeline.InterruptedError{Advice: "nothing was written"}
	}
	return &exitcode.Error{Code: code, Err: err}
}

// Upload sends the archive of context to the Runtime API /build, polls /build_status to the end and prints the image.
//
// Runs context first. Reads what context reads, and RUNTIME_API_URL, RUNTIME_API_KEY (required),
// ALLOW_INSECURE_HTTP, TARGET_IMAGE, UPLOAD_FORMAT, FORCE, POLL_INTERVAL and BUILD_TIMEOUT.
// Standard output gets the image alone (ref@sha256:… when the Runtime API reports the digest).
// After Ctrl-C or a timeout, `status <build_id>` follows the build again.
func Upload(ctx context.Context) error {
	return run(ctx, uploadReads, func(ctx context.Context, cfg config.Config, log *progress.Log) error {
		client, err := pipeline.NewClient(cfg, log)
		if err != nil {
			return err // before packing: the call is wrong
		}
		if err := pipeline.Reach(ctx, cfg, client); err != nil {
			return err // before packing: a wrong URL or key fails in seconds
		}
		ctx = pipeline.HandOver(ctx) // context leaves its plan and archive here for upload
		mg.CtxDeps(asDependency(ctx), Context)
		built, err := pipeline.Upload(ctx, cfg, log)
		if err != nil {
			return err
		}
		log.Resultf("%s", built.Reference())
		return nil
	})
}

// All runs the whole pipeline: context, then upload; with no Runtime API configured it packs and says the upload was skipped.
//
// Reads what context and upload read; RUNTIME_API_URL or RUNTIME_API_KEY unset, or NO_UPLOAD=true,
// skips the upload (under GitHub Actions with a warning annotation). Standard output gets the
// image, or the archive's path when the upload is skipped.
func All(ctx context.Context) error {
	return run(ctx, allReads, func(ctx context.Context, cfg config.Config, log *progress.Log) error {
		if ok, why := pipeline.UploadConfigured(cfg); !ok {
			log.Infof("upload skipped (%s): packing only", why)
			if config.InGitHubActions(os.Getenv) && !cfg.NoUpload { // a fork's pull request has no secrets: say so where it shows
				progress.GitHubWarning(os.Stderr, "the image was not built: "+why+" (the archive was packed only)")
			}
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
	return run(ctx, apiReads, func(ctx context.Context, cfg config.Config, log *progress.Log) error {
		client, err := pipeline.NewClient(cfg, log)
		if err != nil {
			return err
		}
		if err := pipeline.BuildIDArgument("status", buildID); err != nil {
			return err
		}
		built, err := pipeline.Follow(ctx, client, cfg, log, buildID, "")
		if err != nil {
			return err
		}
		if built.Image == "" { // only upload knows the image it asked for
			log.Warnf("build %s succeeded, and the Runtime API named no image", buildID)
			return nil
		}
		log.Resultf("%s", built.Reference())
		return nil
	})
}

// Cancel asks the Runtime API to cancel a build (POST /build/cancel, serve's endpoint) and prints its status then: CANCELLED, or how it had already ended.
//
// Argument: the build ID that upload, all or image printed. Reads RUNTIME_API_URL,
// RUNTIME_API_KEY, ALLOW_INSECURE_HTTP and PROGRESS. A Runtime API without the endpoint is an
// error (exit 1).
func Cancel(ctx context.Context, buildID string) error {
	return run(ctx, cancelReads, func(ctx context.Context, cfg config.Config, log *progress.Log) error {
		status, err := pipeline.Cancel(ctx, cfg, log, buildID)
		if err != nil {
			return err
		}
		log.Resultf("%s", status)
		return nil
	})
}

// Serve runs a local Runtime API on SERVE_ADDR that builds with BuildKit: the Docker engine's own, or a buildkitd (SERVE_BUILDER=buildkit).
//
// Reads SERVE_ADDR, SERVE_BUILDER, RUNTIME_API_KEY (the key clients must send) or SERVE_NO_AUTH
// (beyond loopback also SERVE_ALLOW_REMOTE_NO_AUTH), SERVE_REGISTRY_PREFIX, SERVE_WORKERS,
// SERVE_BUILD_TIMEOUT, SERVE_MAX_UPLOAD, SERVE_LOCAL_IMAGES, SERVE_ALLOW_PRIVATE_URLS,
// SERVE_CACHE_MAX, DOCKER_HOST, and BUILDKIT_HOST with BUILDKIT_TLS_*.
// Ctrl-C or SIGTERM stops it.
func Serve(ctx context.Context) error {
	return run(ctx, serveReads, func(ctx context.Context, cfg config.Config, log *progress.Log) error {
		return pipeline.Serve(ctx, cfg, log, nil)
	})
}

// Validate checks the Dockerfile against the build context without writing or sending anything: prints "ok" and the stages, or each problem as Dockerfile:LINE.
//
// Reads what context reads to select the files and render the Dockerfile.
func Validate(ctx context.Context) error {
	return run(ctx, validateReads, func(ctx context.Context, cfg config.Config, log *progress.Log) error {
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

// Image exports an existing image (docker pull + save, or from its registry), gzips it, uploads it and follows the build; flags -tags=a,b and -timeout=DURATION.
//
// Argument: the image reference. Flags: -tags=a,b adds tags (mage reads words after the reference
// as more targets, so tags go in this flag); -timeout=45m replaces BUILD_TIMEOUT (a Go duration;
// a bare number is minutes). Reads RUNTIME_API_URL, RUNTIME_API_KEY, IMAGE_SOURCE, PLATFORM, PULL,
// TARGET_IMAGE, OUTPUT_DIR, POLL_INTERVAL, BUILD_TIMEOUT, PROGRESS and GITHUB_OUTPUT.
func Image(ctx context.Context, ref string, tags *string, timeout *string) error {
	return run(ctx, imageReads, func(ctx context.Context, cfg config.Config, log *progress.Log) error {
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
			var err error
			if limit, err = parseTimeout(*timeout); err != nil {
				return err
			}
		}
		built, err := pipeline.Image(ctx, cfg, log, ref, extra, limit)
		if err != nil {
			return err
		}
		log.Resultf("%s", built.Reference())
		return nil
	})
}

// parseTimeout reads -timeout: a Go duration like every other timeout (45m, 1h30m), or a bare
// whole number of minutes as it was first documented.
func parseTimeout(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	d, err := time.ParseDuration(v)
	if n, nerr := strconv.Atoi(v); nerr == nil {
		d, err = time.Duration(n)*time.Minute, nil
	}
	if err != nil || d <= 0 {
		return 0, exitcode.Usagef("-timeout=%s: want a positive Go duration such as 45m (a bare number is minutes)", v)
	}
	return d, nil
}

// Version prints the module version and VCS revision of this runtimebuild.
//
// The same text is recorded as "tool" in every result file.
func Version(ctx context.Context) error {
	return run(ctx, versionReads, func(_ context.Context, _ config.Config, log *progress.Log) error {
		log.Resultf("%s", version.Get())
		return nil
	})
}
