package pipeline

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/dockerfile"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/gitinfo"
	"github.com/runtimebuild/runtimebuild/internal/gittest"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
)

// decide needs no checkout: settings and facts in, a plan out.
func TestDecideMakesThePlanFromSettingsAndFactsAlone(t *testing.T) {
	cfg := load(t, map[string]string{"OUTPUT_DIR": "/nowhere", "TARGET": "app", "BUILD_ARGS": "GREETING=hi", "SDK_REF": "refs/tags/v1.2.3", "CUSTOM_TAGS": "py"})
	sha := strings.Repeat("ab", 20)
	facts := Facts{
		SourceDir: "/checkout", Commit: gitinfo.Commit{SHA: sha, Time: time.Unix(1700000000, 0).UTC()}, InGit: true,
		Branch: "main", RemoteURL: "https://example.com/team/app.git",
		Dockerfile:       dockerfile.Choice{Path: "Dockerfile", Origin: dockerfile.FromRoot, Auto: true},
		DockerfileSource: []byte("FROM scratch AS app\nARG GREETING=hello\nCOPY main.py /\n"),
		Selected: []buildctx.Entry{
			{Name: "Dockerfile", Type: tar.TypeReg, Mode: 0o644, Data: []byte("FROM scratch AS app\n")},
			{Name: "main.py", Type: tar.TypeReg, Mode: 0o644, Data: []byte("print(1)\n")},
		},
		Excluded: func(string) string { return "not selected" },
	}
	plan, _, err := decide(cfg.Pack, facts)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Ref != "refs/tags/v1.2.3" || !plan.MTime.Equal(facts.Commit.Time) || plan.Target != "app" || !plan.Check.OK() {
		t.Fatalf("plan %+v", plan)
	}
	if plan.Archive != filepath.Join("/nowhere", "agent-server-"+sha[:7]+"-py-app.tar.gz") {
		t.Fatalf("archive %s", plan.Archive)
	}
	if plan.Tags[0] != sha[:7]+"-py-app" || !strings.Contains(strings.Join(plan.Tags, " "), "1.2.3-py-app") {
		t.Fatalf("tags %q", plan.Tags)
	}
	df := string(plan.Rendered.Dockerfile)
	for _, want := range []string{`ARG GREETING='hi'`, "org.opencontainers.image.source", "https://example.com/team/app.git"} {
		if !strings.Contains(df, want) {
			t.Errorf("the standalone Dockerfile lacks %q:\n%s", want, df)
		}
	}
	if names := buildctx.Names(plan.Entries); !names["main.py"] || !names["Dockerfile"] {
		t.Fatalf("entries %v", names)
	}
	// The same facts outside git: no branch, no remote; the ref is unknown, the time 1970.
	facts.InGit, facts.Branch, facts.RemoteURL, facts.Commit = false, "", "", gitinfo.Commit{SHA: gitinfo.Unknown}
	cfg.Pack.GitRef = ""
	plan, _, err = decide(cfg.Pack, facts)
	if err != nil || plan.Ref != gitinfo.Unknown || plan.MTime.Unix() != 0 || strings.Contains(string(plan.Rendered.Dockerfile), "image.source") {
		t.Fatalf("outside git: %+v, %v", plan, err)
	}
}

// CLEAN_OUTPUT removes the earlier archive only once the new one is complete (issue 20.6), and
// never an image's result file.
func TestCleanOutputWaitsForTheNewArchive(t *testing.T) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	out := t.TempDir()
	old, _, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out, "OUTPUT_NAME": "old.tar.gz"})
	if err != nil {
		t.Fatal(err)
	}
	imageResult := filepath.Join(out, "image-busybox_1.tar.gz")
	if err := result.Write(imageResult, result.Result{Tags: []string{"latest"}, BytesOut: 10, BuildID: "b-1", Status: "SUCCESS", Image: "busybox:1"}); err != nil {
		t.Fatal(err)
	}
	// Interrupted while packing: the earlier archive stays.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := load(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out})
	if _, err := Pack(ctx, cfg.Pack, "", progress.New(io.Discard, "quiet")); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled pack: %v", err)
	}
	if _, err := os.Stat(old.Archive.Path); err != nil {
		t.Fatalf("the earlier archive went before a new one was complete: %v", err)
	}
	// A pack that completes removes it, and leaves the image's result file alone.
	if _, _, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old.Archive.Path); err == nil {
		t.Fatal("the earlier archive was not cleaned")
	}
	if _, err := result.Read(imageResult); err != nil {
		t.Fatalf("the image's result file was cleaned: %v", err)
	}
}

func TestARepositoryWithoutCommitsSaysWhatToDo(t *testing.T) {
	src := t.TempDir()
	gittest.Git(t, src, "init", "-q")
	gittest.Write(t, src, map[string]string{"app.py": "print(1)\n"})
	_, _, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir()})
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "no commits yet: commit, or set SOURCE_DIR to a directory") {
		t.Fatalf("err = %v", err)
	}
}

func TestAMissingURLOrKeyIsNamed(t *testing.T) {
	log := progress.New(io.Discard, "quiet")
	for _, tt := range []struct {
		api  config.API
		want string
	}{
		{config.API{Key: "k"}, "RUNTIME_API_URL is not set"},
		{config.API{URL: "https://api.example.com"}, "RUNTIME_API_KEY is not set"},
		{config.API{}, "RUNTIME_API_URL and RUNTIME_API_KEY are not set"},
	} {
		if _, err := NewClient(tt.api, log); exitcode.Of(err) != exitcode.Usage || !strings.HasPrefix(err.Error(), tt.want+":") {
			t.Errorf("%+v: %v, want %q first", tt.api, err, tt.want)
		}
	}
}

// A result file written at Ctrl-C records what is known (issue 20.7): the build's last status,
// and that the client stopped following it.
func TestCtrlCWhileFollowingRecordsTheLastStatus(t *testing.T) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	out := t.TempDir()
	ctx, ctrlC := context.WithCancel(context.Background())
	defer ctrlC()
	var polls atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/registry_prefix":
			io.WriteString(w, `{"registry_prefix":"registry.test/rt"}`)
		case "/image_exists":
			io.WriteString(w, `{"exists":false}`)
		case "/build":
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, `{"build_id":"b-1"}`)
		case "/build_status":
			if polls.Add(1) > 1 {
				ctrlC() // the user gives up while the build runs, after one status was seen
			}
			io.WriteString(w, `{"status":"WORKING"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	cfg := load(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out, "RUNTIME_API_URL": api.URL, "RUNTIME_API_KEY": "k", "POLL_INTERVAL": "20ms"})
	var logs bytes.Buffer
	built, err := upload(ctx, cfg, progress.New(&logs, "plain"))
	var ie *InterruptedError
	if !errors.As(err, &ie) || built.BuildID != "b-1" {
		t.Fatalf("%+v, %v\n%s", built, err, logs.String())
	}
	results, _ := filepath.Glob(filepath.Join(out, "*.json"))
	if len(results) != 1 {
		t.Fatalf("result files %v", results)
	}
	r, err := result.Read(strings.TrimSuffix(results[0], ".json"))
	if err != nil || r.BuildID != "b-1" || r.Status != "WORKING" || !strings.Contains(r.Stopped, "the client stopped following") {
		t.Fatalf("result %+v, %v", r, err)
	}
}

// status shows the time since the build started when the server says so (issue 20.7), not the
// time since it re-attached.
func TestStatusShowsTheTimeSinceTheBuildStartedWhenTheServerSaysSo(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/build_status" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, `{"status":"SUCCESS","image":"registry.test/rt/app:1","elapsed_seconds":125}`)
	}))
	defer api.Close()
	cfg := load(t, map[string]string{"RUNTIME_API_URL": api.URL, "RUNTIME_API_KEY": "k", "POLL_INTERVAL": "20ms"})
	var logs bytes.Buffer
	log := progress.New(&logs, "plain")
	client, err := NewClient(cfg.API, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Status(context.Background(), client, cfg.API, "", log, "b-1"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "build b-1: SUCCESS (2m5s)") {
		t.Fatalf("the log does not count from the build's start:\n%s", logs.String())
	}
}

// The base tag and the recorded base image follow ARG BASE_IMAGE's value, as build.py names
// its base tag after BuildOptions.base_image whatever the target (base_image_slug
// build.py:456-458, base_tag build.py:501-503, target suffix build.py:536-538): the builder
// stages start FROM python:3.13-bookworm, yet their base tag names BASE_IMAGE, or the
// Dockerfile's own default when BASE_IMAGE is not set. Only a Dockerfile with no ARG
// BASE_IMAGE names the image its target starts from.
func TestTheBaseTagFollowsTheBaseImageArgWhateverTheTarget(t *testing.T) {
	agent, err := os.ReadFile(filepath.Join("..", "..", "examples", "agent-server", filepath.FromSlash(agentDockerfile)))
	if err != nil {
		t.Fatal(err)
	}
	const own = "nikolaik/python-nodejs:python3.13-nodejs22-slim" // the example Dockerfile's ARG BASE_IMAGE default
	digest := "nikolaik/python-nodejs@sha256:" + strings.Repeat("0", 64)
	sha := "611629e6999ad398dc49c761721eefe18d5e6bd9"
	for _, tt := range []struct {
		name, dockerfile, target, baseImage, buildArgs string
		wantBase, wantTag                              string
	}{
		// The acceptance run's case, expected as build.py gave it (TARGET=builder, BASE_IMAGE 3.12).
		{"builder with BASE_IMAGE", string(agent), "builder", "nikolaik/python-nodejs:python3.12-nodejs22-slim", "",
			"nikolaik/python-nodejs:python3.12-nodejs22-slim", "611629e-nikolaik_s_python-nodejs_tag_python3.12-nodejs22-slim-builder"},
		{"binary-builder with BASE_IMAGE", string(agent), "binary-builder", "nikolaik/python-nodejs:python3.12-nodejs22-slim", "",
			"nikolaik/python-nodejs:python3.12-nodejs22-slim", "611629e-nikolaik_s_python-nodejs_tag_python3.12-nodejs22-slim-binary-builder"},
		{"builder on the Dockerfile's own default", string(agent), "builder", "", "",
			own, "611629e-nikolaik_s_python-nodejs_tag_python3.13-nodejs22-slim-builder"},
		{"source-minimal on a digest-pinned BASE_IMAGE", string(agent), "source-minimal", digest, "",
			digest, "611629e-_tag_0000000000000000000000000000000000000000000000-52640defe79a-source-minimal"},
		{"builder on a digest-pinned BASE_IMAGE", string(agent), "builder", digest, "",
			digest, "611629e-_tag_0000000000000000000000000000000000000000000000-52640defe79a-builder"},
		{"BASE_IMAGE through BUILD_ARGS", string(agent), "builder", "", "BASE_IMAGE=python:3.12",
			"python:3.12", "611629e-python_tag_3.12-builder"},
		{"a default made of another ARG", "ARG REG=registry.test\nARG BASE_IMAGE=${REG}/base:1\nFROM alpine:3 AS tools\nFROM ${BASE_IMAGE} AS app\n", "tools", "", "",
			"registry.test/base:1", "611629e-registry.test_s_base_tag_1-tools"},
		{"no ARG BASE_IMAGE: the target's own base", "FROM alpine:3 AS tools\nFROM golang:1.24 AS app\n", "tools", "", "",
			"alpine:3", "611629e-alpine_tag_3-tools"},
		{"ARG BASE_IMAGE without a default: the target's own base", "ARG BASE_IMAGE\nFROM alpine:3 AS tools\nFROM ${BASE_IMAGE} AS app\n", "tools", "", "",
			"alpine:3", "611629e-alpine_tag_3-tools"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := load(t, map[string]string{"OUTPUT_DIR": "/nowhere", "TARGET": tt.target, "BASE_IMAGE": tt.baseImage, "BUILD_ARGS": tt.buildArgs, "SDK_REF": "main"})
			facts := Facts{
				SourceDir: "/checkout", Commit: gitinfo.Commit{SHA: sha}, InGit: true,
				Dockerfile:       dockerfile.Choice{Path: "Dockerfile", Origin: dockerfile.FromRoot, Auto: true},
				DockerfileSource: []byte(tt.dockerfile),
				Excluded:         func(string) string { return "not selected" },
			}
			plan, _, err := decide(cfg.Pack, facts)
			if err != nil {
				t.Fatal(err)
			}
			if plan.BaseImage != tt.wantBase {
				t.Errorf("base image %q, want %q", plan.BaseImage, tt.wantBase)
			}
			if !slices.Contains(plan.Tags, tt.wantTag) || slices.ContainsFunc(plan.Tags, func(tag string) bool { return strings.Contains(tag, "bookworm") }) {
				t.Errorf("tags %q: want %s, and none named after the stage's own FROM", plan.Tags, tt.wantTag)
			}
		})
	}
}

// The log's Dockerfile line says which ignore file applied: BuildKit's choice of
// <Dockerfile>.dockerignore over .dockerignore is otherwise invisible.
func TestTheIgnoreFileUsedIsWorded(t *testing.T) {
	for _, tt := range []struct {
		ignore, dockerfile, want string
	}{
		{"", "", "no ignore file (no .dockerignore)"},
		{"", "docker/Dockerfile", "no ignore file (neither docker/Dockerfile.dockerignore nor .dockerignore)"},
		{".dockerignore", "docker/Dockerfile", "ignore file: .dockerignore"},
		{".dockerignore", "", "ignore file: .dockerignore"},
		{"docker/Dockerfile.dockerignore", "docker/Dockerfile", "ignore file: docker/Dockerfile.dockerignore (beside the Dockerfile: BuildKit reads it instead of .dockerignore)"},
	} {
		if got := ignoreUsed(buildctx.IgnoreFile{Path: tt.ignore}, tt.dockerfile); got != tt.want {
			t.Errorf("ignore file %q with Dockerfile %q: %q, want %q", tt.ignore, tt.dockerfile, got, tt.want)
		}
	}
}
