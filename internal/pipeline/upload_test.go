package pipeline

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/gittest"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// registryOf is a builder that remembers the images it built, as a registry would.
type registryOf struct {
	mu     sync.Mutex
	images map[string]bool
	builds [][]string // target and tags of each build
}

func (r *registryOf) Build(ctx context.Context, job *server.Job, _ io.Writer) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.builds = append(r.builds, append([]string{job.TargetImage}, job.Tags...))
	r.images[job.TargetImage] = true
	for _, t := range job.Tags {
		r.images[t] = true
	}
	return job.TargetImage, nil
}

func (r *registryOf) ImageExists(_ context.Context, image string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.images[image], nil
}

// registryServer serves our server package over httptest with key "k", building into a fake
// registry under registry.test/rt; both are closed when the test ends.
func registryServer(t *testing.T) (*registryOf, *httptest.Server) {
	t.Helper()
	reg := &registryOf{images: map[string]bool{}}
	srv, err := server.New(server.Options{Key: "k", Builder: reg, WorkDir: filepath.Join(t.TempDir(), "w"), RegistryPrefix: "registry.test/rt"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	api := httptest.NewServer(srv.Handler())
	t.Cleanup(api.Close)
	return reg, api
}

func TestUploadNamesTheImageSkipsAnExistingOneAndForceBuildsItAgain(t *testing.T) {
	reg, api := registryServer(t)
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	short := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "--short=7", "HEAD"))
	env := map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir(), "RUNTIME_API_URL": api.URL, "RUNTIME_API_KEY": "k",
		"CUSTOM_TAGS": "py312,latest", "POLL_INTERVAL": "20ms"}
	upload := func(env map[string]string) Built {
		t.Helper()
		cfg := load(t, env)
		log := progress.New(io.Discard, "quiet")
		built, err := upload(context.Background(), cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		return built
	}

	want := "registry.test/rt/agent-server:" + short + "-py312"
	first := upload(env)
	if first.Image != want || first.Skipped || len(reg.builds) != 1 {
		t.Fatalf("first upload: %+v after %d builds, want %s built", first, len(reg.builds), want)
	}
	sha := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "HEAD"))
	repo := "registry.test/rt/agent-server:"
	r, err := result.Read(filepath.Join(env["OUTPUT_DIR"], "agent-server-"+short+"-py312.tar.gz"))
	if err != nil || r.BuildID != first.BuildID || r.Status != "SUCCESS" || r.Image != want || r.UploadSeconds <= 0 {
		t.Fatalf("result file %+v, %v", r, err)
	}
	if tags := reg.builds[0]; !slices.Equal(tags, []string{want, repo + sha + "-py312", repo + "main-py312", repo + short + "-latest", repo + sha + "-latest", repo + "main-latest",
		repo + short + "-nikolaik_s_python-nodejs_tag_python3.12-nodejs22", repo + "ctx-" + r.SHA256[:16]}) {
		t.Fatalf("built %q: the tag set of every CUSTOM_TAGS entry and the content tag, in the same repository", tags)
	}

	second := upload(env)
	if !second.Skipped || second.Image != repo+"ctx-"+r.SHA256[:16] || len(reg.builds) != 1 {
		t.Fatalf("the image exists: %+v after %d builds, want it skipped", second, len(reg.builds))
	}

	env["FORCE"] = "true"
	third := upload(env)
	if third.Skipped || len(reg.builds) != 2 {
		t.Fatalf("FORCE=true: %+v after %d builds, want a second build", third, len(reg.builds))
	}

	env["TARGET_IMAGE"] = "registry.test/rt/other/app:v1" // another name, under the server's prefix
	if got := upload(env); got.Image != "registry.test/rt/other/app:v1" || reg.builds[2][1] != "registry.test/rt/other/app:"+short+"-py312" {
		t.Fatalf("TARGET_IMAGE: %+v, tags %q", got, reg.builds[2])
	}
}

func TestAnotherBaseImageOfTheSameCommitAndTargetIsBuilt(t *testing.T) {
	reg, api := registryServer(t)
	src := agentServer(t, nil)
	short := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "--short=7", "HEAD"))
	out := t.TempDir()
	for i, step := range []struct {
		base, force string
		built       bool
		log         string
	}{
		{"registry.example/base:a", "", true, ""},
		{"registry.example/base:b", "", true, "no image holds this archive yet (registry.test/rt/agent-server:ctx-"},
		{"registry.example/base:b", "", false, "exists already: it was built from this very archive"},
		{"registry.example/base:b", "true", true, ""},
	} {
		var logs strings.Builder
		cfg := load(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out, "RUNTIME_API_URL": api.URL, "RUNTIME_API_KEY": "k",
			"POLL_INTERVAL": "20ms", "TARGET": "source", "BASE_IMAGE": step.base, "FORCE": step.force})
		log := progress.New(&logs, "plain")
		before := len(reg.builds)
		got, err := upload(context.Background(), cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		want := "registry.test/rt/agent-server:" + short + "-python-source"
		if !step.built {
			want = "registry.test/rt/agent-server:ctx-" // the image the archive's content tag names
		}
		if !strings.HasPrefix(got.Image, want) || got.Skipped == step.built || (len(reg.builds) > before) != step.built {
			t.Fatalf("step %d, BASE_IMAGE=%s FORCE=%q: %+v, want built %v\n%s", i, step.base, step.force, got, step.built, logs.String())
		}
		if !strings.Contains(logs.String(), step.log) {
			t.Fatalf("step %d: the log does not say %q:\n%s", i, step.log, logs.String())
		}
	}
}

// A Ctrl-C during the upload names what the packing left (docs/protocol.md): the archive and
// its .json, which a later upload sends.
func TestCtrlCWhileUploadingNamesTheArchiveAndItsResultFile(t *testing.T) {
	uploading := make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/registry_prefix":
			io.WriteString(w, `{"registry_prefix":"registry.test/rt"}`)
		case "/image_exists":
			io.WriteString(w, `{"exists":false}`)
		case "/build":
			io.CopyN(io.Discard, r.Body, 1)
			close(uploading)
			io.Copy(io.Discard, r.Body) // ends when the client hangs up; only then does r's context watch the connection
			<-r.Context().Done()
		}
	}))
	t.Cleanup(api.Close)
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	cfg := load(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir(), "RUNTIME_API_URL": api.URL, "RUNTIME_API_KEY": "k"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-uploading; cancel() }() // Ctrl-C once the upload has begun
	_, err := upload(ctx, cfg, progress.New(io.Discard, "quiet"))
	var ie *InterruptedError
	if !errors.As(err, &ie) || ie.While != "uploading" {
		t.Fatalf("err = %v, want an interruption while uploading", err)
	}
	archives, _ := filepath.Glob(filepath.Join(cfg.Pack.OutputDir, "*.tar.gz"))
	if len(archives) != 1 {
		t.Fatalf("archives in OUTPUT_DIR: %q, want 1", archives)
	}
	if want := archives[0] + " and " + archives[0] + ".json were written, nothing was built; run it again to upload"; ie.Advice != want {
		t.Fatalf("advice %q, want %q", ie.Advice, want)
	}
	if _, err := result.Read(archives[0]); err != nil {
		t.Fatalf("the result file it names: %v", err)
	}
}

// A SUCCESS the server marks checked_only is a checked-only build, and so is one from a server
// before that field, which says it only in its message.
func TestFollowReadsCheckedOnlyFromItsFieldElseFromTheMessage(t *testing.T) {
	for _, tt := range []struct {
		answer      string
		checkedOnly bool
	}{
		{`{"build_id":"b1","status":"SUCCESS","image":"registry.test/rt/app:1","checked_only":true}`, true},
		{`{"build_id":"b1","status":"SUCCESS","image":"registry.test/rt/app:1","message":"checked only: SERVE_BUILDER=check builds nothing"}`, true},
		{`{"build_id":"b1","status":"SUCCESS","image":"registry.test/rt/app:1"}`, false},
	} {
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/build_status" {
				http.NotFound(w, r)
				return
			}
			io.WriteString(w, tt.answer)
		}))
		client, err := runtimeapi.New(api.URL, "k", runtimeapi.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		built, err := Follow(ctx, client, config.API{PollInterval: 10 * time.Millisecond}, "", progress.New(io.Discard, "quiet"), "b1", "registry.test/rt/app:1")
		cancel()
		api.Close()
		if err != nil || built.CheckedOnly != tt.checkedOnly || (built.Image != "") == tt.checkedOnly {
			t.Errorf("status %s: %+v %v, want CheckedOnly %v", tt.answer, built, err, tt.checkedOnly)
		}
	}
}

// A server whose check builder only checks the archive answers SUCCESS with a "checked only"
// message (docs/protocol.md): the result file keeps SUCCESS as the server's word but says
// checked_only and names no image, since none was built.
func TestACheckedOnlyBuildIsRecordedAsSuch(t *testing.T) {
	srv, err := server.New(server.Options{Key: "k", Builder: server.CheckBuilder{Name: "SERVE_BUILDER=check"}, WorkDir: filepath.Join(t.TempDir(), "w"), RegistryPrefix: "registry.test/rt"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	api := httptest.NewServer(srv.Handler())
	t.Cleanup(api.Close)
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	gh := filepath.Join(t.TempDir(), "github-output")
	env := map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir(), "RUNTIME_API_URL": api.URL, "RUNTIME_API_KEY": "k", "POLL_INTERVAL": "20ms", "GITHUB_OUTPUT": gh}
	var logs strings.Builder
	built, err := upload(context.Background(), load(t, env), progress.New(&logs, "plain"))
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if !built.CheckedOnly || built.Image != "" {
		t.Fatalf("built %+v: want checked only, with no image", built)
	}
	short := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "--short=7", "HEAD"))
	path := filepath.Join(env["OUTPUT_DIR"], "agent-server-"+short+"-python.tar.gz")
	r, err := result.Read(path)
	if err != nil || r.Status != "SUCCESS" || !r.CheckedOnly || r.Image != "" || r.BuildID != built.BuildID {
		t.Fatalf("result file %+v, %v: want SUCCESS, checked_only and no image", r, err)
	}
	raw, _ := os.ReadFile(result.PathFor(path))
	if !strings.Contains(string(raw), `"checked_only": true`) || strings.Contains(string(raw), `"image"`) {
		t.Fatalf("result file:\n%s", raw)
	}
	if out, _ := os.ReadFile(gh); strings.Contains(string(out), "image=") {
		t.Fatalf("GITHUB_OUTPUT names an image although none was built:\n%s", out)
	}
	if !strings.Contains(logs.String(), "checked, not built") {
		t.Fatalf("the log does not say it:\n%s", logs.String())
	}
}
