package pipeline

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/gittest"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
)

// upload packs and sends, as the upload target does.
func upload(ctx context.Context, cfg config.Config, log *progress.Log) (Built, error) {
	client, err := NewClient(cfg.API, log)
	if err != nil {
		return Built{}, err
	}
	packed, err := Pack(ctx, cfg.Pack, cfg.Output.GitHubOutput, log)
	if err != nil {
		return Built{}, err
	}
	return Send(ctx, client, packed, cfg.API, cfg.Send, cfg.Output.GitHubOutput, log)
}

// load builds a Config from the given variables only.
func load(t testing.TB, env map[string]string) config.Config {
	t.Helper()
	state := t.TempDir() // serve's build records: never the user's own state directory
	cfg, err := config.Load(func(k string) string {
		if v, ok := env[k]; ok || k != "SERVE_STATE_DIR" {
			return v
		}
		return state
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func pack(t *testing.T, env map[string]string) (Packed, string, error) {
	t.Helper()
	var logs bytes.Buffer
	cfg := load(t, env)
	p, err := Pack(context.Background(), cfg.Pack, cfg.Output.GitHubOutput, progress.New(&logs, "plain"))
	p.Release() // as the context target does once it is done
	return p, logs.String(), err
}

func listArchive(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = string(b)
	}
}

func names(m map[string]string) []string {
	var n []string
	for k := range m {
		n = append(n, k)
	}
	slices.Sort(n)
	return n
}

func TestTwoCheckoutsOfOneCommitPackToTheSameBytes(t *testing.T) {
	origin := gittest.Init(t, t.TempDir(), gittest.Project())
	var sums []string
	for i, umask := range []string{"022", "077"} {
		clone := filepath.Join(t.TempDir(), "clone")
		cmd := exec.Command("sh", "-c", "umask "+umask+" && git clone -q \"$0\" \"$1\"", origin, clone)
		cmd.Env = gittest.Env()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		stamp := time.Now().Add(time.Duration(i*1000+17) * time.Hour)
		filepath.Walk(clone, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, stamp, stamp) })
		p, _, err := pack(t, map[string]string{"SOURCE_DIR": clone, "OUTPUT_DIR": t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, p.Archive.SHA256)
		if fi, _ := os.Stat(filepath.Join(clone, "README.md")); i == 1 && fi.Mode().Perm() != 0o600 {
			t.Fatalf("umask 077 clone has README.md mode %v: the test does not vary permissions", fi.Mode().Perm())
		}
	}
	if sums[0] != sums[1] {
		t.Fatalf("sha256 %s != %s", sums[0], sums[1])
	}
}

func TestContextWritesArchiveAndResultNamedAfterTheCommit(t *testing.T) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	sha := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "HEAD"))
	out := t.TempDir()
	p, logs, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out, "CUSTOM_TAGS": "py312,latest", "TARGET": "source"})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(out, "agent-server-"+sha[:7]+"-py312-source.tar.gz")
	if p.Archive.Path != want {
		t.Fatalf("archive %s, want %s", p.Archive.Path, want)
	}
	members := listArchive(t, want)
	if got := names(members); !slices.Contains(got, "Dockerfile") || !slices.Contains(got, "openhands/agent_server/__main__.py") {
		t.Fatalf("members %q", got)
	}
	if !strings.Contains(members["Dockerfile"], "AS source\n") || !strings.Contains(members["Dockerfile"], sha) {
		t.Fatal("the Dockerfile does not end with the source stage or lacks the SHA")
	}
	if img := readImage(t, members["Dockerfile"]); img.stage != "source" || !slices.Equal(img.args["OPENHANDS_BUILD_GIT_SHA"], []string{sha}) ||
		!slices.Equal(img.args["OPENHANDS_BUILD_GIT_REF"], []string{"main"}) || !slices.Equal(img.args["BASE_IMAGE"], []string{"nikolaik/python-nodejs:python3.12-nodejs22"}) {
		t.Fatalf("the template's Dockerfile builds %s with args %v", img.stage, img.args)
	}
	r, err := result.Read(want)
	if err != nil {
		t.Fatal(err)
	}
	if r.SHA != sha || r.ShortSHA != sha[:7] || r.Target != "source" || r.Ref != "main" || r.Dockerfile != "Dockerfile (generated)" ||
		!slices.Equal(r.Tags[:2], []string{sha[:7] + "-py312-source", sha + "-py312-source"}) ||
		r.SHA256 != p.Archive.SHA256 || r.Files != p.Archive.Files || r.BytesOut == 0 || r.BytesIn == 0 {
		t.Fatalf("result %+v", r)
	}
	if strings.Contains(logs, "differ from HEAD") {
		t.Fatalf("a clean checkout was called dirty:\n%s", logs)
	}
}

func TestDirtyFilesAreCountedAndTheDockerfileReplacementSaid(t *testing.T) {
	files := gittest.Project()
	files["Dockerfile"] = "FROM scratch\n"
	src := gittest.Init(t, t.TempDir(), files)
	gittest.Write(t, src, map[string]string{"README.md": "changed\n", "scripts/run.sh": "#!/bin/sh\necho changed\n", "new.txt": "untracked"})
	_, logs, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir(), "DOCKERFILE": "generated"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, "2 packed file(s) differ from HEAD") {
		t.Errorf("no dirty warning for two files:\n%s", logs)
	}
	if !strings.Contains(logs, "root Dockerfile is replaced in the archive by the standalone one made from Dockerfile (generated)") {
		t.Errorf("the replacement is not said:\n%s", logs)
	}
	p, _, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir(), "INCLUDE_UNTRACKED": "true", "DOCKERFILE": "generated"})
	if err != nil {
		t.Fatal(err)
	}
	if members := listArchive(t, p.Archive.Path); members["new.txt"] != "untracked" {
		t.Errorf("INCLUDE_UNTRACKED did not pack new.txt: %q", names(members))
	}
}

func TestADockerfileOfTheSourceStaysAtItsPathAndItsStandaloneOneIsAtTheRoot(t *testing.T) {
	files := gittest.Project()
	files["docker/prod.Dockerfile"] = "FROM scratch\nCOPY README.md /\n"
	src := gittest.Init(t, t.TempDir(), files)
	p, logs, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir(), "DOCKERFILE": "docker/prod.Dockerfile"})
	if err != nil {
		t.Fatal(err)
	}
	members := listArchive(t, p.Archive.Path)
	if got := members["docker/prod.Dockerfile"]; got != files["docker/prod.Dockerfile"] {
		t.Fatalf("the chosen Dockerfile at its path: %q", got)
	}
	if got := members["Dockerfile"]; !strings.HasPrefix(got, files["docker/prod.Dockerfile"]+"LABEL ") ||
		!strings.Contains(got, "dev.runtimebuild.dockerfile='docker/prod.Dockerfile@sha256:") {
		t.Fatalf("root Dockerfile %q", got)
	}
	if !strings.Contains(logs, "Dockerfile: docker/prod.Dockerfile (DOCKERFILE=docker/prod.Dockerfile); no ignore file (neither docker/prod.Dockerfile.dockerignore nor .dockerignore)\n") || strings.Contains(logs, "replaced") {
		t.Fatalf("the choice is said once, and no root Dockerfile was replaced:\n%s", logs)
	}
	// TARGET unset and no binary stage: the Dockerfile's own last stage, named as the default target.
	if p.Plan.Target != "stage-0" || filepath.Base(p.Archive.Path) != "agent-server-"+p.Plan.Commit.Short()+"-python.tar.gz" {
		t.Fatalf("target %q, archive %s", p.Plan.Target, p.Archive.Path)
	}
}

func TestOutputDirInsideSourceDirIsNeverPacked(t *testing.T) {
	files := gittest.Project()
	files["runtime-build/committed-by-mistake.txt"] = "x"
	src := gittest.Init(t, t.TempDir(), files)
	out := filepath.Join(src, "runtime-build")
	first, _, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out, "CLEAN_OUTPUT": "false"})
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out, "INCLUDE_UNTRACKED": "true", "CLEAN_OUTPUT": "false"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names(listArchive(t, second.Archive.Path)) {
		if strings.HasPrefix(n, "runtime-build") {
			t.Fatalf("packed %s from OUTPUT_DIR", n)
		}
	}
	if first.Archive.SHA256 != second.Archive.SHA256 {
		t.Fatal("the first archive in OUTPUT_DIR changed the second")
	}
}

func TestCleanOutputRemovesOnlyThisToolsFiles(t *testing.T) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	out := t.TempDir()
	foreign := map[string]string{
		"notes.txt":             "mine",
		"other-1.tar.gz":        "not ours",
		"other-1.tar.gz.json":   `{"generator":"something-else","archive":"notes.txt"}`,
		"liar.json":             `{"generator":"runtimebuild","archive":"notes.txt"}`,
		"sub/agent-x.tar.gz":    "nested",
		"agent-server-x.tar.gz": "same pattern, but no result file of ours",
	}
	gittest.Write(t, out, foreign)
	old, _, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out, "OUTPUT_NAME": "old.tar.gz"})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(out, ".runtimebuild-123.tmp"), []byte("interrupted"), 0o644)
	if _, _, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out}); err != nil {
		t.Fatal(err)
	}
	for name, content := range foreign {
		if b, err := os.ReadFile(filepath.Join(out, name)); err != nil || string(b) != content {
			t.Errorf("foreign file %s: %q, %v", name, b, err)
		}
	}
	for _, gone := range []string{old.Archive.Path, old.Archive.Path + ".json", filepath.Join(out, ".runtimebuild-123.tmp")} {
		if _, err := os.Stat(gone); err == nil {
			t.Errorf("%s was not cleaned", gone)
		}
	}
}

func TestBadInputFailsWithOneLineAndLeavesNothing(t *testing.T) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	withSecret := gittest.Init(t, t.TempDir(), map[string]string{"app.py": "", ".env": "TOKEN=1"})
	unreadable := gittest.Init(t, t.TempDir(), gittest.Project())
	os.Chmod(filepath.Join(unreadable, "README.md"), 0)
	ignoreAll := gittest.Init(t, t.TempDir(), map[string]string{".dockerignore": "*\n", "a.txt": "a"})
	noProject := gittest.Init(t, t.TempDir(), map[string]string{"main.go": "package main"})
	badIgnore := gittest.Init(t, t.TempDir(), map[string]string{"app/Dockerfile": "FROM scratch\nCOPY . /\n", "app/Dockerfile.dockerignore": "[z-a\n", "a.txt": "a"})
	keyInside := gittest.Init(t, t.TempDir(), map[string]string{"Dockerfile": "FROM scratch\nCOPY . /\n", "notes.txt": "-----BEGIN " + "RSA PRIVATE KEY-----\n" + strings.Repeat("QUJD", 40) + "\n-----END RSA PRIVATE KEY-----\n"})
	badTemplate := filepath.Join(t.TempDir(), "Dockerfile.tmpl")
	if err := os.WriteFile(badTemplate, []byte("FROM {{if}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		code int
		want string
	}{
		{"a missing SOURCE_DIR", map[string]string{"SOURCE_DIR": filepath.Join(src, "nope")}, 2, "SOURCE_DIR"},
		{"an INCLUDE matching nothing", map[string]string{"SOURCE_DIR": src, "INCLUDE": "nothing/*"}, 2, `INCLUDE pattern "nothing/*"`},
		{"an empty selection", map[string]string{"SOURCE_DIR": ignoreAll}, 2, "nothing to pack"},
		{"likely secrets", map[string]string{"SOURCE_DIR": withSecret, "DOCKERFILE": "app.py"}, 2, "ALLOW_SECRETS=.env"},
		{"a project the template cannot build", map[string]string{"SOURCE_DIR": noProject}, 2, "missing: pyproject.toml"},
		{"the template's missing files name the way out", map[string]string{"SOURCE_DIR": noProject}, 2, "; add them, or set DOCKERFILE to a Dockerfile of the source"},
		{"a malformed INCLUDE pattern", map[string]string{"SOURCE_DIR": src, "INCLUDE": "src,[z-a"}, 2, `INCLUDE pattern "[z-a": `},
		{"a malformed ignore file names it", map[string]string{"SOURCE_DIR": badIgnore, "DOCKERFILE": "app/Dockerfile"}, 2, "app/Dockerfile.dockerignore: syntax error"},
		{"a malformed ALLOW_SECRETS pattern", map[string]string{"SOURCE_DIR": withSecret, "DOCKERFILE": "app.py", "ALLOW_SECRETS": ".env,[z-a"}, 2, "ALLOW_SECRETS"},
		{"likely secrets say how to go on", map[string]string{"SOURCE_DIR": withSecret, "DOCKERFILE": "app.py"}, 2, "refusing to pack 1 file(s) that look like secrets: .env; exclude them in .dockerignore, or allow them with ALLOW_SECRETS=.env"},
		{"a key found in the content", map[string]string{"SOURCE_DIR": keyInside}, 2, "notes.txt:1 (private-key); exclude them in .dockerignore, or allow them with ALLOW_SECRETS=notes.txt"},
		{"a DOCKERFILE_TEMPLATE that does not parse", map[string]string{"SOURCE_DIR": src, "DOCKERFILE": "generated", "DOCKERFILE_TEMPLATE": badTemplate}, 2, "parsing the Dockerfile template: "},
		{"a missing DOCKERFILE", map[string]string{"SOURCE_DIR": src, "DOCKERFILE": "nope/Dockerfile"}, 2, `DOCKERFILE="nope/Dockerfile"`},
		{"OUTPUT_DIR equal to SOURCE_DIR", map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": src}, 2, "is SOURCE_DIR itself"},
		{"CLEAN_OUTPUT of the root", map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": "/"}, 2, "refuses to clean"},
	}
	if os.Geteuid() != 0 { // root reads any file
		tests = append(tests, struct {
			name string
			env  map[string]string
			code int
			want string
		}{"an unreadable file", map[string]string{"SOURCE_DIR": unreadable}, 1, "README.md"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			env := map[string]string{"OUTPUT_DIR": out}
			for k, v := range tt.env {
				env[k] = v
			}
			_, _, err := pack(t, env)
			if got := exitcode.Of(err); got != tt.code {
				t.Fatalf("exit code %d (%v), want %d", got, err, tt.code)
			}
			if err == nil {
				return
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q: want one line containing %q", msg, tt.want)
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Fatalf("left behind in OUTPUT_DIR: %v", entries)
			}
		})
	}
}

func TestOutsideGitTheSHAIsUnknownAndTimesAreZero(t *testing.T) {
	src := t.TempDir()
	gittest.Write(t, src, gittest.Project())
	p, logs, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p.Archive.Path) != "agent-server-unknown-python.tar.gz" || !strings.Contains(logs, "not a git checkout") {
		t.Fatalf("archive %s, logs:\n%s", p.Archive.Path, logs)
	}
	f, _ := os.Open(p.Archive.Path)
	defer f.Close()
	zr, _ := gzip.NewReader(f)
	h, err := tar.NewReader(zr).Next()
	if err != nil || h.ModTime.Unix() != 0 {
		t.Fatalf("first entry %v, %v: want mtime 0", h, err)
	}
}

func TestSHAOverrideAndSourceDateEpoch(t *testing.T) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	p, _, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir(),
		"SDK_SHA": "feedface00112233", "GITHUB_SHA": "ignored", "SOURCE_DATE_EPOCH": "86400"})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p.Archive.Path) != "agent-server-feedfac-python.tar.gz" || p.Result.SHA != "feedface00112233" {
		t.Fatalf("archive %s result %+v", p.Archive.Path, p.Result)
	}
	if !p.Plan.MTime.Equal(time.Unix(86400, 0)) {
		t.Fatalf("mtime %v", p.Plan.MTime)
	}
	q, _, _ := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir()})
	if q.Plan.MTime.Unix() != gittest.CommitTime {
		t.Fatalf("default mtime %v, want the commit time", q.Plan.MTime)
	}
}
