package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/imagename"
	"github.com/runtimebuild/runtimebuild/internal/outputdir"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// Built is the outcome of a build on the Runtime API.
type Built struct {
	BuildID string
	Image   string
	Skipped bool // the image existed already and FORCE was not set
}

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
	return runtimeapi.New(cfg.RuntimeAPIURL, cfg.RuntimeAPIKey, runtimeapi.Options{
		AllowInsecureHTTP: cfg.AllowInsecureHTTP, Logger: log,
	})
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
		return Built{}, err
	}
	if !cfg.Force {
		exists, err := alreadyBuilt(ctx, client, log, plan, target, tags)
		if err != nil {
			return Built{}, err
		}
		if exists {
			log.Infof("%s exists already: nothing to build (FORCE=true builds it again)", target)
			return Built{Image: target, Skipped: true}, nil
		}
	}
	res := packed.Result
	return Submit(ctx, client, cfg, log, Submission{
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
	plan, err := NewPlan(ctx, cfg, log)
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

// Submission is one archive to build.
type Submission struct {
	Archive     string
	What        string // what the archive is, for the log; empty: its path
	Format      runtimeapi.Format
	TargetImage string
	Tags        []string
	Result      *result.Result // updated when not nil, beside ResultFor (default: Archive)
	ResultFor   string
}

// Submit uploads, then polls to the end, keeping the result file and GITHUB_OUTPUT up to date.
// ctx carries the BUILD_TIMEOUT deadline.
func Submit(ctx context.Context, client *runtimeapi.Client, cfg config.Config, log *progress.Log, s Submission) (Built, error) {
	fi, err := os.Stat(s.Archive)
	if err != nil {
		return Built{}, err
	}
	what := s.What
	if what == "" {
		what = s.Archive
	}
	log.Infof("uploading %s (%s) to build %s", what, progress.Bytes(fi.Size()), s.TargetImage)
	start := time.Now()
	meter := log.Meter("uploading", -1, 0)
	id, err := client.SubmitBuild(ctx, runtimeapi.BuildRequest{
		Archive: s.Archive, Format: s.Format, TargetImage: s.TargetImage, Tags: s.Tags, Progress: meter.Update,
	})
	meter.Done()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Built{}, fmt.Errorf("the upload did not finish within BUILD_TIMEOUT=%s: %w", cfg.BuildTimeout, err)
		}
		return Built{}, fmt.Errorf("uploading %s: %w", s.Archive, err)
	}
	uploaded := time.Since(start)
	log.Infof("build %s accepted after %s upload", id, uploaded.Round(time.Millisecond))
	record := func(status, image string) {
		if s.Result == nil {
			return
		}
		s.Result.BuildID, s.Result.Status, s.Result.Image = id, status, image
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
	record("QUEUED", "")
	if err := result.AppendGitHubOutput(cfg.GitHubOutput, [2]string{"build_id", id}); err != nil {
		log.Warnf("%v", err)
	}
	built, err := Follow(ctx, client, cfg, log, id, s.TargetImage)
	var failed *runtimeapi.BuildFailedError
	switch {
	case err == nil:
		record("SUCCESS", built.Image)
	case errors.As(err, &failed):
		record(failed.Status, "")
	}
	return built, err
}

// Follow polls build id to its end; deadline: ctx's, else BUILD_TIMEOUT from now.
func Follow(ctx context.Context, client *runtimeapi.Client, cfg config.Config, log *progress.Log, id, target string) (Built, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(cfg.BuildTimeout)
	}
	resume := fmt.Sprintf("follow it with: go run magefile.go status %s", id)
	live := log.Status(id)
	st, err := client.WaitForBuild(ctx, id, runtimeapi.Wait{
		Interval: cfg.PollInterval, Deadline: deadline, ResumeAdvice: resume, OnStatus: live.Update,
	})
	live.Done()
	if errors.Is(err, context.Canceled) {
		return Built{BuildID: id}, fmt.Errorf("interrupted; build %s goes on on the server: %s", id, resume)
	}
	if err != nil {
		return Built{BuildID: id}, err
	}
	image := st.Image
	if image == "" {
		image = target
	}
	if err := result.AppendGitHubOutput(cfg.GitHubOutput, [2]string{"image", image}); err != nil {
		log.Warnf("%v", err)
	}
	return Built{BuildID: id, Image: image}, nil
}

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
		prefix, err := client.RegistryPrefix(ctx)
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
