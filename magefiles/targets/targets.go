// Package targets holds the runtimebuild mage targets. Import it into any magefile with
//
//	//mage:import
//	_ "github.com/runtimebuild/runtimebuild/magefiles/targets"
//
// Each target loads the settings config.Sections gives it, calls the pipeline's jobs in order
// and reports. The "Reads" line of each doc comment (what -h prints) is checked against
// config.Reads by a test.
package targets

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/invocation"
	"github.com/runtimebuild/runtimebuild/internal/pipeline"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/version"
)

// Context packs SOURCE_DIR into a reproducible build-context tar.gz whose root Dockerfile builds TARGET as it is; prints its path.
//
// Reads SOURCE_DIR, OUTPUT_DIR, OUTPUT_NAME, IMAGE_NAME, BASE_IMAGE, BUILD_ARGS, TARGET,
// CUSTOM_TAGS, SDK_REF, GITHUB_REF, CLEAN_OUTPUT, SDK_SHA, GITHUB_SHA, INCLUDE, INCLUDE_UNTRACKED,
// ALLOW_SECRETS, DOCKERFILE, DOCKERFILE_TEMPLATE, TARGET_IMAGE, SOURCE_DATE_EPOCH, PROGRESS and
// GITHUB_OUTPUT. Standard output gets the archive's path alone; its sha256 and sizes are on the
// summary line above.
func Context(ctx context.Context) error {
	return run(ctx, "context", func(ctx context.Context, cfg config.Config, log *progress.Log) error {
		return packOnly(ctx, cfg, log)
	})
}

// packOnly packs and prints the archive's path as the result: context's job, and all's when
// the upload is skipped.
func packOnly(ctx context.Context, cfg config.Config, log *progress.Log) error {
	packed, err := pack(ctx, cfg, log)
	if err != nil {
		return err
	}
	packed.Release()
	log.Resultf("%s", packed.Archive.Path)
	return nil
}

// pack runs pipeline.Pack and says what it packed.
func pack(ctx context.Context, cfg config.Config, log *progress.Log) (pipeline.Packed, error) {
	start := time.Now()
	packed, err := pipeline.Pack(ctx, cfg.Pack, cfg.Output.GitHubOutput, log)
	if err != nil {
		return packed, err
	}
	a := packed.Archive
	log.Infof("packed %d files, %s → %s in %.1fs: %s sha256:%s", a.Files, progress.Bytes(a.BytesIn), progress.Bytes(a.BytesOut),
		time.Since(start).Seconds(), a.Path, a.SHA256)
	return packed, nil
}

// run loads the settings of target, runs job, and hands back an error that carries its exit
// code to mage (which prints it), its text escaped; under GitHub Actions the error is also an
// annotation, on stderr. Ctrl-C and SIGTERM cancel job's context, clear the terminal's bar at once, and
// end the run with 130 or 143 once job has cleaned up.
func run(ctx context.Context, target string, job func(context.Context, config.Config, *progress.Log) error) error {
	signalled() // the signals are ours from the start of the run
	cfg, err := config.LoadFor(target, os.Getenv)
	if err == nil {
		columns, _ := strconv.Atoi(os.Getenv("COLUMNS")) // the width when stderr is no terminal that can tell (PROGRESS=tty)
		log := progress.New(os.Stderr, cfg.Output.Progress).WithResults(os.Stdout).WithColumns(columns)
		jobCtx, stop := interruptible(ctx, log)
		err = pipeline.Advise(job(jobCtx, cfg, log))
		if sig := stop(); sig != nil && err != nil && errors.Is(err, context.Canceled) {
			err = interrupted(err, sig)
		}
	}
	err = progress.EscapeError(err)
	if err != nil && config.InGitHubActions(os.Getenv) { // the runner reads commands on stderr too; stdout is the result's alone
		progress.GitHubError(os.Stderr, err)
	}
	return exitcode.ForMage(err)
}

// interrupted gives a run stopped by sig its exit code (130 for Ctrl-C, 143 for SIGTERM) and a
// last line that says what is left.
func interrupted(err error, sig os.Signal) error {
	var ie *pipeline.InterruptedError
	if !errors.As(err, &ie) {
		err = &pipeline.InterruptedError{Advice: "nothing was written"}
	}
	return &exitcode.Error{Code: exitCodeOf(sig), Err: err}
}

// Upload packs as context does, sends the archive to the Runtime API /build, polls /build_status to the end and prints the image.
//
// Reads SOURCE_DIR, OUTPUT_DIR, OUTPUT_NAME, IMAGE_NAME, BASE_IMAGE, BUILD_ARGS, TARGET,
// CUSTOM_TAGS, SDK_REF, GITHUB_REF, CLEAN_OUTPUT, SDK_SHA, GITHUB_SHA, INCLUDE, INCLUDE_UNTRACKED,
// ALLOW_SECRETS, DOCKERFILE, DOCKERFILE_TEMPLATE, TARGET_IMAGE, SOURCE_DATE_EPOCH,
// RUNTIME_API_URL, RUNTIME_API_KEY (both required), ALLOW_INSECURE_HTTP, POLL_INTERVAL,
// BUILD_TIMEOUT, UPLOAD_FORMAT, FORCE, PROGRESS and GITHUB_OUTPUT. Standard output gets the image
// alone (ref@sha256:… when the Runtime API reports the digest). The archive's content tag
// (ctx-…) decides whether the image exists already. After Ctrl-C or a timeout,
// `status <build_id>` follows the build again.
func Upload(ctx context.Context) error {
	return run(ctx, "upload", upload)
}

func upload(ctx context.Context, cfg config.Config, log *progress.Log) error {
	client, err := pipeline.NewClient(cfg.API, log)
	if err != nil {
		return err // before packing: the call is wrong
	}
	if err := pipeline.Reach(ctx, client, cfg.API, cfg.Pack.TargetImage); err != nil {
		return err // before packing: a wrong URL or key fails in seconds
	}
	packed, err := pack(ctx, cfg, log)
	if err != nil {
		return err
	}
	built, err := pipeline.Send(ctx, client, packed, cfg.API, cfg.Send, cfg.Output.GitHubOutput, log)
	if err != nil {
		return err
	}
	return report(log, built)
}

// report prints the image built on stdout; a build the server only checked has none (Follow
// said "checked, not built").
func report(log *progress.Log, built pipeline.Built) error {
	if built.CheckedOnly {
		return nil
	}
	log.Resultf("%s", built.Reference())
	return nil
}

// All runs the whole pipeline: context, then upload; with no Runtime API configured it packs and says the upload was skipped.
//
// Reads SOURCE_DIR, OUTPUT_DIR, OUTPUT_NAME, IMAGE_NAME, BASE_IMAGE, BUILD_ARGS, TARGET,
// CUSTOM_TAGS, SDK_REF, GITHUB_REF, CLEAN_OUTPUT, SDK_SHA, GITHUB_SHA, INCLUDE, INCLUDE_UNTRACKED,
// ALLOW_SECRETS, DOCKERFILE, DOCKERFILE_TEMPLATE, TARGET_IMAGE, SOURCE_DATE_EPOCH,
// RUNTIME_API_URL, RUNTIME_API_KEY, ALLOW_INSECURE_HTTP, POLL_INTERVAL, BUILD_TIMEOUT,
// UPLOAD_FORMAT, FORCE, NO_UPLOAD, PROGRESS and GITHUB_OUTPUT. RUNTIME_API_URL or RUNTIME_API_KEY
// unset, or NO_UPLOAD=true, skips the upload (under GitHub Actions with a warning annotation).
// Standard output gets the image, or the archive's path when the upload is skipped.
func All(ctx context.Context) error {
	return run(ctx, "all", func(ctx context.Context, cfg config.Config, log *progress.Log) error {
		if ok, why := pipeline.UploadConfigured(cfg.API, cfg.Send); !ok {
			log.Infof("upload skipped (%s): packing only", why)
			if config.InGitHubActions(os.Getenv) && !cfg.Send.NoUpload { // a fork's pull request has no secrets: say so where it shows
				progress.GitHubWarning(os.Stderr, "the image was not built: "+why+" (the archive was packed only)")
			}
			return packOnly(ctx, cfg, log)
		}
		return upload(ctx, cfg, log)
	})
}

// Status re-attaches to a build of the Runtime API and polls it to its end (after Ctrl-C, a CI timeout, a lost connection).
//
// Argument: the build ID that upload, all or image printed. Reads RUNTIME_API_URL,
// RUNTIME_API_KEY, ALLOW_INSECURE_HTTP, POLL_INTERVAL, BUILD_TIMEOUT, PROGRESS and GITHUB_OUTPUT.
func Status(ctx context.Context, buildID string) error {
	return run(ctx, "status", func(ctx context.Context, cfg config.Config, log *progress.Log) error {
		client, err := pipeline.NewClient(cfg.API, log)
		if err != nil {
			return err
		}
		if err := pipeline.BuildIDArgument("status", buildID); err != nil {
			return err
		}
		built, err := pipeline.Status(ctx, client, cfg.API, cfg.Output.GitHubOutput, log, buildID)
		if err != nil {
			return err
		}
		if built.Image == "" && !built.CheckedOnly { // only upload knows the image it asked for
			log.Warnf("build %s succeeded, and the Runtime API named no image", buildID)
			return nil
		}
		return report(log, built)
	})
}

// Cancel asks the Runtime API to cancel a build (POST /build/cancel, serve's endpoint) and prints its status then: CANCELLED, or how it had already ended.
//
// Argument: the build ID that upload, all or image printed. Reads RUNTIME_API_URL,
// RUNTIME_API_KEY, ALLOW_INSECURE_HTTP, POLL_INTERVAL, BUILD_TIMEOUT, PROGRESS and GITHUB_OUTPUT.
// A Runtime API without the endpoint is an error (exit 1).
func Cancel(ctx context.Context, buildID string) error {
	return run(ctx, "cancel", func(ctx context.Context, cfg config.Config, log *progress.Log) error {
		if err := pipeline.BuildIDArgument("cancel", buildID); err != nil {
			return err
		}
		client, err := pipeline.NewClient(cfg.API, log)
		if err != nil {
			return err
		}
		status, err := pipeline.Cancel(ctx, client, log, buildID)
		if err != nil {
			return err
		}
		log.Resultf("%s", status)
		return nil
	})
}

// Serve runs a local Runtime API on SERVE_ADDR that builds with BuildKit: the Docker engine's own, or a buildkitd (SERVE_BUILDER=buildkit).
//
// Reads SERVE_ADDR, SERVE_BUILDER, RUNTIME_API_KEY (the key clients must send), SERVE_NO_AUTH,
// SERVE_ALLOW_REMOTE_NO_AUTH, SERVE_REGISTRY_PREFIX, SERVE_WORKERS, SERVE_BUILD_TIMEOUT,
// SERVE_MAX_UPLOAD, SERVE_LOCAL_IMAGES, SERVE_ALLOW_PRIVATE_URLS, SERVE_CACHE_MAX,
// SERVE_STATE_DIR, XDG_STATE_HOME (SERVE_STATE_DIR's default lies under it), SERVE_CACHE_MODE, SERVE_PLATFORMS, BUILDKIT_HOST, BUILDKIT_TLS_CA_CERT, BUILDKIT_TLS_CERT, BUILDKIT_TLS_KEY,
// BUILDKIT_TLS_SERVER_NAME, DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, PROGRESS and
// GITHUB_OUTPUT. Ctrl-C or SIGTERM stops it (exit 130 or 143) once its builds are cancelled.
func Serve(ctx context.Context) error {
	return run(ctx, "serve", func(ctx context.Context, cfg config.Config, log *progress.Log) error {
		return pipeline.Serve(ctx, cfg.Serve, log, nil)
	})
}

// Validate checks the Dockerfile against the build context without writing or sending anything: prints "ok" and the stages, or each problem as Dockerfile:LINE.
//
// Reads SOURCE_DIR, OUTPUT_DIR, OUTPUT_NAME, IMAGE_NAME, BASE_IMAGE, BUILD_ARGS, TARGET,
// CUSTOM_TAGS, SDK_REF, GITHUB_REF, CLEAN_OUTPUT, SDK_SHA, GITHUB_SHA, INCLUDE, INCLUDE_UNTRACKED,
// ALLOW_SECRETS, DOCKERFILE, DOCKERFILE_TEMPLATE, TARGET_IMAGE, SOURCE_DATE_EPOCH, PROGRESS and
// GITHUB_OUTPUT: what context reads to select the files and render the Dockerfile.
func Validate(ctx context.Context) error {
	return run(ctx, "validate", func(ctx context.Context, cfg config.Config, log *progress.Log) error {
		rep, err := pipeline.Validate(ctx, cfg.Pack, log)
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
// as more targets, so tags go in this flag, and a word there is refused); -timeout=45m replaces
// BUILD_TIMEOUT (a Go duration; a bare number is minutes). Reads RUNTIME_API_URL,
// RUNTIME_API_KEY, ALLOW_INSECURE_HTTP, POLL_INTERVAL, BUILD_TIMEOUT, IMAGE_SOURCE, PLATFORM,
// PULL, TARGET_IMAGE, OUTPUT_DIR, DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, PROGRESS and
// GITHUB_OUTPUT.
func Image(ctx context.Context, ref string, tags *string, timeout *string) error {
	return run(ctx, "image", func(ctx context.Context, cfg config.Config, log *progress.Log) error {
		if words := invocation.Current().Trailing("image", 1); len(words) > 0 {
			return exitcode.Usagef("image takes one image reference, and %q follows it: tags go in -tags=%s", strings.Join(words, " "), strings.Join(words, ","))
		}
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
		client, err := pipeline.NewClient(cfg.API, log)
		if err != nil {
			return err
		}
		built, err := pipeline.Image(ctx, client, cfg.API, cfg.Export, cfg.Output.GitHubOutput, log, ref, extra, limit)
		if err != nil {
			return err
		}
		return report(log, built)
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
// Reads PROGRESS and GITHUB_OUTPUT. The same text is recorded as "tool" in every result file.
func Version(ctx context.Context) error {
	return run(ctx, "version", func(_ context.Context, _ config.Config, log *progress.Log) error {
		log.Resultf("%s", version.Get())
		return nil
	})
}
