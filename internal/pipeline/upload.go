package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/imagename"
	"github.com/runtimebuild/runtimebuild/internal/invocation"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// Built is the outcome of a build on the Runtime API.
type Built struct {
	BuildID string
	Image   string
	Digest  string // sha256:… when the Runtime API reported it
	Skipped bool   // the image existed already and FORCE was not set
	// Status is the build's last status known (when following stopped early, where it was).
	Status runtimeapi.BuildStatus
	// CheckedOnly: the server only checked the archive (its check builder) and built no image.
	CheckedOnly bool
	// Telemetry is how the server spent the build's time, when it says (serve does).
	Telemetry *runtimeapi.Telemetry
}

// Reference is the image as the result line names it: by digest when one was reported.
func (b Built) Reference() string {
	if b.Digest == "" || strings.Contains(b.Image, "@") {
		return b.Image
	}
	return b.Image + "@" + b.Digest
}

// InterruptedError is a run stopped by Ctrl-C or SIGTERM; Advice says what is left and what to do.
type InterruptedError struct {
	While  string // "packing", "uploading", "waiting for build …"
	Advice string
}

func (e *InterruptedError) Error() string {
	if e.While == "" {
		return "interrupted: " + e.Advice
	}
	return "interrupted while " + e.While + ": " + e.Advice
}

// Unwrap makes an interruption a cancellation to errors.Is.
func (e *InterruptedError) Unwrap() error { return context.Canceled }

// UploadConfigured says whether the Runtime API is configured; when not, the reason.
func UploadConfigured(api config.API, send config.Send) (bool, string) {
	switch {
	case send.NoUpload:
		return false, "NO_UPLOAD=true"
	case api.URL == "" && api.Key == "":
		return false, "RUNTIME_API_URL and RUNTIME_API_KEY are not set"
	case api.URL == "":
		return false, "RUNTIME_API_URL is not set"
	case api.Key == "":
		return false, "RUNTIME_API_KEY is not set"
	}
	return true, ""
}

// NewClient returns the Runtime API client of the settings; a missing URL or key is a usage
// error that says which.
func NewClient(api config.API, log *progress.Log) (*runtimeapi.Client, error) {
	if ok, why := UploadConfigured(api, config.Send{}); !ok {
		return nil, exitcode.Usagef("%s: set RUNTIME_API_URL to the Runtime API and RUNTIME_API_KEY to its key", why)
	}
	client, err := runtimeapi.New(api.URL, api.Key, runtimeapi.Options{
		AllowInsecureHTTP: api.AllowInsecureHTTP, Logger: log,
	})
	return client, settingError(err)
}

// withBuildTimeout is the one place BUILD_TIMEOUT (or image's -timeout) bounds a build: the
// upload and the polling share this deadline.
func withBuildTimeout(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, limit)
}

// Send sends what Pack packed to the Runtime API and follows the build to its end, within
// BUILD_TIMEOUT. Unless FORCE is set, /image_exists is asked first for the archive's content
// tag in the target repository: the same archive built before is not built again. It releases
// packed's hold on the archive when done.
func Send(ctx context.Context, client *runtimeapi.Client, packed Packed, api config.API, send config.Send, githubOutput string, log *progress.Log) (Built, error) {
	defer packed.Release()
	ctx, cancel := withBuildTimeout(ctx, api.BuildTimeout)
	defer cancel()
	plan := packed.Plan
	target, tags, err := targetImage(ctx, client, plan, packed.Tags[1:])
	if err != nil {
		return Built{}, interruptedAfterPacking(err, plan.Archive, "asking the Runtime API")
	}
	res := packed.Result
	if !send.Force {
		repo, _ := imagename.Repository(target) // targetImage made it
		content := repo + ":" + packed.ContentTag
		exists, err := client.ImageExists(ctx, content)
		if err != nil {
			return Built{}, interruptedAfterPacking(err, plan.Archive, "asking the Runtime API")
		}
		if exists { // the content tag names this archive's image; target's tag may since name another build
			log.Infof("%s exists already: it was built from this very archive (sha256:%s): nothing to build (FORCE=true builds it again)", content, packed.Archive.SHA256)
			res.Status, res.Image = string(runtimeapi.Skipped), content
			if err := result.Write(plan.Archive, res); err != nil {
				log.Warnf("updating the result file: %v", err)
			}
			if err := result.AppendGitHubOutput(githubOutput, [2]string{"image", content}); err != nil {
				log.Warnf("%v", err)
			}
			return Built{Image: content, Skipped: true}, nil
		}
		log.Infof("no image holds this archive yet (%s is not there): building", content)
	}
	return submit(ctx, client, api, githubOutput, log, submission{
		Archive: plan.Archive, Format: runtimeapi.Format(send.UploadFormat), TargetImage: target, Tags: tags, Result: &res, Kept: true,
	})
}

// submission is one archive to build.
type submission struct {
	Archive     string
	What        string // what the archive is, for the log; empty: its path
	Format      runtimeapi.Format
	TargetImage string
	Tags        []string
	Result      *result.Result // updated when not nil, beside ResultFor (default: Archive)
	ResultFor   string
	Kept        bool // the archive and its result file stay in OUTPUT_DIR (upload's; image's export is removed)
}

// submit uploads, then polls to the end, keeping the result file and GITHUB_OUTPUT up to date.
// ctx carries the build's deadline (withBuildTimeout).
func submit(ctx context.Context, client *runtimeapi.Client, api config.API, githubOutput string, log *progress.Log, s submission) (Built, error) {
	fi, err := os.Stat(s.Archive)
	if err != nil {
		return Built{}, err
	}
	what := s.What
	if what == "" {
		what = s.Archive
	}
	if s.Format == runtimeapi.RawImage {
		log.Infof("uploading %s (%s) to build %s", what, progress.Bytes(fi.Size()), s.TargetImage)
	} else { // the protocol wants the archive as base64 text: a third more to send
		log.Infof("uploading %s (%s, sent as base64: %s) to build %s", what, progress.Bytes(fi.Size()), progress.Bytes(base64Size(fi.Size())), s.TargetImage)
	}
	start := time.Now()
	meter := log.Meter("uploading", -1, 0)
	id, err := client.SubmitBuild(ctx, runtimeapi.BuildRequest{
		Archive: s.Archive, Format: s.Format, TargetImage: s.TargetImage, Tags: s.Tags, Progress: meter.Update,
	})
	meter.Done()
	if err != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return Built{}, fmt.Errorf("the upload did not finish within BUILD_TIMEOUT=%s: %w", api.BuildTimeout, err)
		case errors.Is(err, context.Canceled):
			advice := "nothing was built; run it again to upload"
			if s.Kept { // say what is on disk, as a Ctrl-C after packing does (docs/protocol.md)
				advice = writtenAdvice(s.Archive, advice)
			}
			return Built{}, &InterruptedError{While: "uploading", Advice: advice}
		}
		return Built{}, fmt.Errorf("uploading %s: %w", s.Archive, err)
	}
	uploaded := time.Since(start)
	log.Infof("build %s accepted after %s upload", id, uploaded.Round(time.Millisecond))
	var telemetry *runtimeapi.Telemetry // the server's, once the build ended
	record := func(status runtimeapi.BuildStatus, image, stopped string) {
		if s.Result == nil {
			return
		}
		s.Result.BuildID, s.Result.Status, s.Result.Image, s.Result.Stopped = id, string(status), image, stopped
		s.Result.Telemetry = telemetry
		s.Result.UploadSeconds = uploaded.Seconds()
		s.Result.BuildSeconds = time.Since(start.Add(uploaded)).Seconds()
		resultFor := s.ResultFor
		if resultFor == "" {
			resultFor = s.Archive
		}
		if err := result.Write(resultFor, *s.Result); err != nil {
			log.Warnf("updating the result file: %v", err)
		}
	}
	record(runtimeapi.Queued, "", "")
	if err := result.AppendGitHubOutput(githubOutput, [2]string{"build_id", id}); err != nil {
		log.Warnf("%v", err)
	}
	built, err := Follow(ctx, client, api, githubOutput, log, id, s.TargetImage)
	telemetry = built.Telemetry
	var failed *runtimeapi.BuildFailedError
	switch {
	case err == nil && built.CheckedOnly: // SUCCESS is the server's word; the file says nothing was built
		if s.Result != nil {
			s.Result.CheckedOnly = true
		}
		record(runtimeapi.Success, "", "")
	case err == nil:
		record(runtimeapi.Success, built.Reference(), "")
	case errors.As(err, &failed):
		record(failed.Status, "", "")
	case errors.Is(err, context.Canceled): // what is known: the last status, and that nobody follows it now
		record(built.Status, "", "interrupted: the client stopped following; the build goes on on the server")
	case errors.Is(err, runtimeapi.ErrBuildTimeout), errors.Is(err, context.DeadlineExceeded):
		record(built.Status, "", "BUILD_TIMEOUT: the client stopped following; the build goes on on the server")
	}
	return built, err
}

// Status follows build id to its end within BUILD_TIMEOUT from now: the status target.
func Status(ctx context.Context, client *runtimeapi.Client, api config.API, githubOutput string, log *progress.Log, id string) (Built, error) {
	ctx, cancel := withBuildTimeout(ctx, api.BuildTimeout)
	defer cancel()
	return Follow(ctx, client, api, githubOutput, log, id, "")
}

// Follow polls build id to its end, following its log, until ctx's deadline (the build's, set
// once by withBuildTimeout). In plain mode the polls come at least every progress.Heartbeat, so
// that a silent build still prints a line that often. A build the server only checked (its
// check builder) comes back CheckedOnly, with no image.
func Follow(ctx context.Context, client *runtimeapi.Client, api config.API, githubOutput string, log *progress.Log, id, target string) (Built, error) {
	deadline, _ := ctx.Deadline()
	resume := "follow it with: " + invocation.Resume("status", id)
	interval := api.PollInterval
	if log.Mode() == progress.Plain {
		interval = min(interval, progress.Heartbeat)
	}
	live := log.Status(id)
	st, err := client.WaitForBuild(ctx, id, runtimeapi.Wait{
		Interval: interval, Deadline: deadline, ResumeAdvice: resume,
		OnStatus: func(s runtimeapi.BuildStatus, elapsed time.Duration) { live.Update(string(s), elapsed) },
		OnLog:    live.Line,
	})
	live.Done()
	if st.Telemetry != nil { // serve sends it once the build ended, well or badly
		log.Infof("build %s: %s", id, st.Telemetry)
	}
	var failed *runtimeapi.BuildFailedError
	switch {
	case errors.Is(err, context.Canceled):
		return Built{BuildID: id, Status: st.Status}, &InterruptedError{While: "waiting for build " + id, Advice: "the build goes on on the server: " + resume}
	case errors.As(err, &failed) && len(failed.LogTail) > 0 && log.Mode() == progress.Quiet:
		log.Warnf("the last %d lines of build %s's log:", len(failed.LogTail), id) // the other modes showed them as they came
		for _, l := range failed.LogTail {
			log.Warnf("| %s", l)
		}
	}
	if errors.Is(err, runtimeapi.ErrBuildTimeout) {
		err = fmt.Errorf("BUILD_TIMEOUT=%s: %w", api.BuildTimeout, err)
	}
	if err != nil {
		return Built{BuildID: id, Status: st.Status, Telemetry: st.Telemetry}, err
	}
	if st.CheckedOnly || strings.HasPrefix(st.Message, CheckedOnlyNote) { // the message: servers before checked_only
		log.Infof("build %s: checked, not built: the Runtime API's check builder builds no image", id)
		return Built{BuildID: id, Status: st.Status, CheckedOnly: true}, nil
	}
	built := Built{BuildID: id, Image: target, Digest: st.Digest, Status: st.Status, Telemetry: st.Telemetry}
	if st.Image != "" {
		if _, perr := name.ParseReference(st.Image); perr != nil {
			log.Warnf("the Runtime API named the image %q, which is no image reference: reporting %s", st.Image, target)
		} else {
			built.Image = st.Image
		}
	}
	if built.Digest != "" && !digestPattern.MatchString(built.Digest) {
		log.Warnf("the Runtime API reported the digest %q, which is no sha256 digest: ignoring it", built.Digest)
		built.Digest = ""
	}
	if built.Image != "" { // status of a build whose server names no image: nothing to report
		if err := result.AppendGitHubOutput(githubOutput, [2]string{"image", built.Reference()}); err != nil {
			log.Warnf("%v", err)
		}
		log.Infof("built %s (build %s)", built.Reference(), id)
	}
	return built, nil
}

// CheckedOnlyNote starts the message with which a server's check builder says that a SUCCESS
// built nothing (docs/protocol.md, /build_status): what servers before checked_only send.
const CheckedOnlyNote = "checked only"

var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// base64Size is the length of n bytes as base64 text.
func base64Size(n int64) int64 { return (n + 2) / 3 * 4 }

// targetImage is TARGET_IMAGE, else {registry_prefix}/{IMAGE_NAME}:{the plan's first tag};
// the other tags become full references in the same repository.
func targetImage(ctx context.Context, client *runtimeapi.Client, plan Plan, others []string) (string, []string, error) {
	var repo, target string
	if plan.TargetImage != "" {
		r, err := imagename.Repository(plan.TargetImage)
		if err != nil {
			return "", nil, exitcode.Usagef("TARGET_IMAGE=%q is not a valid image reference: %v", plan.TargetImage, err)
		}
		repo, target = r, plan.TargetImage
	} else {
		prefix, err := registryPrefix(ctx, client)
		if err != nil {
			return "", nil, err
		}
		repo = strings.TrimRight(prefix, "/") + "/" + plan.ImageName
		refs, err := imagename.References(repo, plan.Tags[:1])
		if err != nil {
			return "", nil, fmt.Errorf("the Runtime API's registry prefix %q: %w", prefix, err)
		}
		target = refs[0]
	}
	tags, err := imagename.References(repo, others)
	if err != nil {
		return "", nil, err
	}
	return target, tags, nil
}
