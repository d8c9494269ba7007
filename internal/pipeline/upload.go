package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/imagename"
	"github.com/runtimebuild/runtimebuild/internal/invocation"
	"github.com/runtimebuild/runtimebuild/internal/outputdir"
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
func UploadConfigured(cfg config.Config) (bool, string) {
	switch {
	case cfg.NoUpload:
		return false, "NO_UPLOAD=true"
	case cfg.RuntimeAPIURL == "":
		return false, "RUNTIME_API_URL is not set"
	case cfg.RuntimeAPIKey == "":
		return false, "RUNTIME_API_KEY is not set"
	}
	return true, ""
}

// NewClient returns the Runtime API client of the configuration; a missing URL or key is a
// usage error.
func NewClient(cfg config.Config, log *progress.Log) (*runtimeapi.Client, error) {
	if cfg.RuntimeAPIURL == "" || cfg.RuntimeAPIKey == "" {
		return nil, exitcode.Usagef("RUNTIME_API_URL and RUNTIME_API_KEY must be set to talk to the Runtime API")
	}
	client, err := runtimeapi.New(cfg.RuntimeAPIURL, cfg.RuntimeAPIKey, runtimeapi.Options{
		AllowInsecureHTTP: cfg.AllowInsecureHTTP, Logger: log,
	})
	return client, settingError(err)
}

// HandOver returns a context in which Context leaves what it packed for Upload to take, so that
// a target running context as a dependency and then upload sends exactly what was planned and
// packed in the same run (mage hands the context given to mg.CtxDeps to the dependency).
func HandOver(ctx context.Context) context.Context {
	return context.WithValue(ctx, handOverKey{}, &handOver{})
}

type handOverKey struct{}

type handOver struct {
	mu     sync.Mutex
	packed *Packed
	run    *outputdir.Run // context's hold on the archive, kept until upload is done with it
}

func (h *handOver) set(p Packed, run *outputdir.Run) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.packed, h.run = &p, run
}

// handedOver returns what Context packed in this run, and its hold on the archive for the
// caller to close.
func handedOver(ctx context.Context) (Packed, *outputdir.Run, bool) {
	h, ok := ctx.Value(handOverKey{}).(*handOver)
	if !ok {
		return Packed{}, nil, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.packed == nil {
		return Packed{}, nil, false
	}
	run := h.run
	h.run = nil
	return *h.packed, run, true
}

// Upload sends the archive Context packed in this run (see HandOver) to the Runtime API and
// follows the build to its end, within BUILD_TIMEOUT. Without one handed over, it plans again
// and sends the archive of that plan found on disk, checked against its own listing.
func Upload(ctx context.Context, cfg config.Config, log *progress.Log) (Built, error) {
	client, err := NewClient(cfg, log)
	if err != nil {
		return Built{}, err
	}
	packed, run, ok := handedOver(ctx)
	defer func() { run.Close() }()
	if !ok {
		if packed, err = packedOnDisk(ctx, cfg, log); err != nil {
			return Built{}, err
		}
	}
	plan := packed.Plan
	if run == nil { // another run's CLEAN_OUTPUT keeps the archive while it is sent
		if run, err = outputdir.Open(cfg.OutputDir); err == nil {
			err = run.Hold(filepath.Base(plan.Archive))
		}
		if err != nil { // a read-only OUTPUT_DIR can still be uploaded from
			log.Warnf("OUTPUT_DIR: %v; another run's CLEAN_OUTPUT could remove the archive while it is sent", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.BuildTimeout)
	defer cancel()

	target, tags, err := targetImage(ctx, client, plan)
	if err != nil {
		return Built{}, interruptedAfterPacking(err, plan.Archive, "asking the Runtime API")
	}
	res := packed.Result
	if !cfg.Force {
		exists, err := alreadyBuilt(ctx, client, log, plan, target, tags)
		if err != nil {
			return Built{}, interruptedAfterPacking(err, plan.Archive, "asking the Runtime API")
		}
		if exists {
			log.Infof("%s exists already: nothing to build (FORCE=true builds it again)", target)
			res.Status, res.Image = string(runtimeapi.Skipped), target
			if err := result.Write(plan.Archive, res); err != nil {
				log.Warnf("updating the result file: %v", err)
			}
			if err := result.AppendGitHubOutput(cfg.GitHubOutput, [2]string{"image", target}); err != nil {
				log.Warnf("%v", err)
			}
			return Built{Image: target, Skipped: true}, nil
		}
	}
	return submit(ctx, client, cfg, log, submission{
		Archive: plan.Archive, Format: runtimeapi.Format(cfg.UploadFormat), TargetImage: target, Tags: tags, Result: &res,
	})
}

// alreadyBuilt asks /image_exists about the target image and, when the base image is known,
// about its base tag too: the target image's name does not carry the base, so another
// BASE_IMAGE for the same commit and TARGET must not find it built.
func alreadyBuilt(ctx context.Context, client *runtimeapi.Client, log *progress.Log, plan Plan, target string, tags []string) (bool, error) {
	exists, err := client.ImageExists(ctx, target)
	if err != nil || !exists || plan.BaseTag == "" {
		return exists, err
	}
	base := ""
	for i, t := range plan.Tags[1:] { // tags are the references of plan.Tags[1:]
		if t == plan.BaseTag {
			base = tags[i]
		}
	}
	if base == "" { // the base tag is the target image's own
		return true, nil
	}
	if exists, err = client.ImageExists(ctx, base); err != nil || exists {
		return exists, err
	}
	log.Infof("%s exists, but %s does not: that image was built on another base than %s; building", target, base, plan.BaseImage)
	return false, nil
}

// packedOnDisk finds the archive and result file that Context wrote for this configuration
// and checks the archive's Dockerfile against its own listing.
func packedOnDisk(ctx context.Context, cfg config.Config, log *progress.Log) (Packed, error) {
	plan, err := newPlan(ctx, cfg, log)
	if err != nil {
		return Packed{}, err
	}
	res, err := result.Read(plan.Archive)
	if err != nil {
		return Packed{}, fmt.Errorf("no packed archive at %s (run the context target first): %w", plan.Archive, unwrapPath(err))
	}
	rep, err := checkArchive(ctx, plan.Archive, plan.Dockerfile.Name())
	if err != nil {
		return Packed{}, err
	}
	if !rep.OK() {
		return Packed{}, ProblemsError(log, rep)
	}
	return Packed{Plan: plan, Result: res}, nil
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
}

// submit uploads, then polls to the end, keeping the result file and GITHUB_OUTPUT up to date.
// ctx carries the BUILD_TIMEOUT deadline.
func submit(ctx context.Context, client *runtimeapi.Client, cfg config.Config, log *progress.Log, s submission) (Built, error) {
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
			return Built{}, fmt.Errorf("the upload did not finish within BUILD_TIMEOUT=%s: %w", cfg.BuildTimeout, err)
		case errors.Is(err, context.Canceled):
			return Built{}, &InterruptedError{While: "uploading", Advice: "nothing was built; run it again to upload"}
		}
		return Built{}, fmt.Errorf("uploading %s: %w", s.Archive, err)
	}
	uploaded := time.Since(start)
	log.Infof("build %s accepted after %s upload", id, uploaded.Round(time.Millisecond))
	var telemetry *runtimeapi.Telemetry // the server's, once the build ended
	record := func(status runtimeapi.BuildStatus, image string) {
		if s.Result == nil {
			return
		}
		s.Result.BuildID, s.Result.Status, s.Result.Image = id, string(status), image
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
	record(runtimeapi.Queued, "")
	if err := result.AppendGitHubOutput(cfg.GitHubOutput, [2]string{"build_id", id}); err != nil {
		log.Warnf("%v", err)
	}
	built, err := Follow(ctx, client, cfg, log, id, s.TargetImage)
	telemetry = built.Telemetry
	var failed *runtimeapi.BuildFailedError
	switch {
	case err == nil:
		record(runtimeapi.Success, built.Reference())
	case errors.As(err, &failed):
		record(failed.Status, "")
	}
	return built, err
}

// Follow polls build id to its end, following its log; deadline: ctx's, else BUILD_TIMEOUT
// from now. In plain mode the polls come at least every progress.Heartbeat, so that a silent
// build still prints a line that often.
func Follow(ctx context.Context, client *runtimeapi.Client, cfg config.Config, log *progress.Log, id, target string) (Built, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(cfg.BuildTimeout)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline) // a poll in flight ends at BUILD_TIMEOUT too
		defer cancel()
	}
	resume := "follow it with: " + invocation.Resume("status", id)
	interval := cfg.PollInterval
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
		return Built{BuildID: id}, &InterruptedError{While: "waiting for build " + id, Advice: "the build goes on on the server: " + resume}
	case errors.As(err, &failed) && len(failed.LogTail) > 0 && log.Mode() == progress.Quiet:
		log.Warnf("the last %d lines of build %s's log:", len(failed.LogTail), id) // the other modes showed them as they came
		for _, l := range failed.LogTail {
			log.Warnf("| %s", l)
		}
	}
	if err != nil {
		return Built{BuildID: id, Telemetry: st.Telemetry}, err
	}
	built := Built{BuildID: id, Image: target, Digest: st.Digest, Telemetry: st.Telemetry}
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
		if err := result.AppendGitHubOutput(cfg.GitHubOutput, [2]string{"image", built.Reference()}); err != nil {
			log.Warnf("%v", err)
		}
		log.Infof("built %s (build %s)", built.Reference(), id)
	}
	return built, nil
}

var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// base64Size is the length of n bytes as base64 text.
func base64Size(n int64) int64 { return (n + 2) / 3 * 4 }

// targetImage is TARGET_IMAGE, else {registry_prefix}/{IMAGE_NAME}:{the plan's first tag}; the
// plan's other tags become full references in the same repository.
func targetImage(ctx context.Context, client *runtimeapi.Client, plan Plan) (string, []string, error) {
	cfg := plan.Config
	var repo, target string
	if cfg.TargetImage != "" {
		r, err := imagename.Repository(cfg.TargetImage)
		if err != nil {
			return "", nil, exitcode.Usagef("TARGET_IMAGE=%q is not a valid image reference: %v", cfg.TargetImage, err)
		}
		repo, target = r, cfg.TargetImage
	} else {
		prefix, err := registryPrefix(ctx, client)
		if err != nil {
			return "", nil, err
		}
		repo = strings.TrimRight(prefix, "/") + "/" + cfg.ImageName
		refs, err := imagename.References(repo, plan.Tags[:1])
		if err != nil {
			return "", nil, fmt.Errorf("the Runtime API's registry prefix %q: %w", prefix, err)
		}
		target = refs[0]
	}
	tags, err := imagename.References(repo, plan.Tags[1:])
	if err != nil {
		return "", nil, err
	}
	return target, tags, nil
}
