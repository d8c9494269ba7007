package pipeline

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/gittest"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
)

const agentDockerfile = "openhands-agent-server/openhands/agent_server/docker/Dockerfile"

// agentServer is a git checkout of examples/agent-server: a uv workspace shaped like the real
// agent server, with its Dockerfile where the real one lives.
func agentServer(t *testing.T, extra map[string]string) string {
	t.Helper()
	files := map[string]string{}
	root := filepath.Join("..", "..", "examples", "agent-server")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		files[k] = v
	}
	return gittest.Init(t, t.TempDir(), files)
}

// image is the Dockerfile at an archive's root as BuildKit reads it with no --target and no
// --build-arg: the stage its last stage is (through FROM <stage>), and the values each ARG
// declaration gets.
type image struct {
	stage string
	args  map[string][]string
}

func readImage(t *testing.T, df string) image {
	t.Helper()
	res, err := parser.Parse(strings.NewReader(df))
	if err != nil {
		t.Fatal(err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	img := image{args: map[string][]string{}}
	lex := shell.NewLex(res.EscapeToken)
	add := func(a instructions.ArgCommand) {
		for _, kv := range a.Args {
			v := "<none>"
			if kv.Value != nil {
				v, _, _ = lex.ProcessWord(*kv.Value, shell.EnvsFromSlice(nil))
			}
			img.args[kv.Key] = append(img.args[kv.Key], v)
		}
	}
	for _, a := range metaArgs {
		add(a)
	}
	for _, st := range stages {
		for _, c := range st.Commands {
			if a, ok := c.(*instructions.ArgCommand); ok {
				add(*a)
			}
		}
	}
	last := stages[len(stages)-1]
	img.stage = last.Name
	for img.stage == "" {
		i := slices.IndexFunc(stages, func(s instructions.Stage) bool { return s.Name == strings.ToLower(last.BaseName) })
		if i < 0 {
			t.Fatalf("the last stage is FROM %s, no stage of the Dockerfile", last.BaseName)
		}
		img.stage = stages[i].Name
	}
	return img
}

func TestEachTargetOfTheAgentServerIsWhatItsArchiveBuilds(t *testing.T) {
	src := agentServer(t, nil)
	sha := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "HEAD"))
	out := t.TempDir()
	sums := map[string]string{}
	// builder and binary-builder start FROM python:3.13-bookworm, not ${BASE_IMAGE}: the result
	// still records BASE_IMAGE, as build.py's base tag names it (build.py:456-458, 501-503).
	for _, target := range []string{"binary", "binary-minimal", "source", "source-minimal", "base-image", "builder", "binary-builder"} {
		t.Run(target, func(t *testing.T) {
			env := map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out, "CLEAN_OUTPUT": "false", "TARGET": target,
				"BASE_IMAGE": "registry.example/base:py3.13", "BUILD_ARGS": "ENABLE_VERTEX=1, VSCODE_VERSION=1.99.0 beta"}
			p, logs, err := pack(t, env)
			if err != nil {
				t.Fatalf("%v\n%s", err, logs)
			}
			members := listArchive(t, p.Archive.Path)
			img := readImage(t, members["Dockerfile"])
			if img.stage != target {
				t.Fatalf("the archive's Dockerfile builds %s, want %s", img.stage, target)
			}
			for arg, want := range map[string][]string{
				"BASE_IMAGE":              {"registry.example/base:py3.13"},
				"OPENHANDS_BUILD_GIT_SHA": {sha},
				"OPENHANDS_BUILD_GIT_REF": {"main"},
				"ENABLE_VERTEX":           {"1", "1"},
				"VSCODE_VERSION":          {"1.99.0 beta"},
			} {
				if got := img.args[arg]; !slices.Equal(got, want) {
					t.Errorf("ARG %s: %q, want %q", arg, got, want)
				}
			}
			if members[agentDockerfile] == "" || members[agentDockerfile] == members["Dockerfile"] {
				t.Error("the agent server's own Dockerfile is not kept, as it is, at its path")
			}
			if !strings.Contains(logs, "Dockerfile: "+agentDockerfile+" (DOCKERFILE=auto: no root Dockerfile; the agent server's own); ignore file: .dockerignore\n") || strings.Contains(logs, "replaced") {
				t.Errorf("the choice and the ignore file are not said, or a replacement is said:\n%s", logs)
			}
			suffix := "-" + target
			if target == "binary" {
				suffix = ""
			}
			if name := filepath.Base(p.Archive.Path); name != "agent-server-"+sha[:7]+"-python"+suffix+".tar.gz" {
				t.Errorf("archive %s", name)
			}
			if p.Result.Target != target || p.Result.Tags[0] != sha[:7]+"-python"+suffix || p.Result.BaseImage != "registry.example/base:py3.13" || p.Result.Dockerfile != agentDockerfile {
				t.Errorf("result %+v", p.Result)
			}
			sums[target] = p.Archive.SHA256
		})
	}
	if len(sums) != 7 || sums["binary"] == sums["source"] || sums["source"] == sums["source-minimal"] {
		t.Fatalf("the targets do not give distinct archives: %v", sums)
	}
}

func TestWithNoSettingsTheAgentServerBuildsItsBinaryWithItsOwnBase(t *testing.T) {
	src := agentServer(t, map[string]string{"openhands-sdk/NOTES.md": "not for the image"})
	t.Chdir(filepath.Join(src, "openhands-sdk", "openhands")) // as a user deep in the workspace
	out := t.TempDir()
	var logs bytes.Buffer
	p, err := Pack(context.Background(), load(t, map[string]string{"OUTPUT_DIR": out}).Pack, "", progress.New(&logs, "plain"))
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	members := listArchive(t, p.Archive.Path)
	if _, ok := members["openhands-agent-server/openhands/agent_server/__main__.py"]; !ok || members["pyproject.toml"] == "" {
		t.Fatalf("a run from a subdirectory did not pack the work-tree root: %q", names(members))
	}
	img := readImage(t, members["Dockerfile"])
	if img.stage != "binary" || !slices.Equal(img.args["BASE_IMAGE"], []string{"nikolaik/python-nodejs:python3.13-nodejs22-slim"}) {
		t.Fatalf("builds %s on %q: want binary on the Dockerfile's own default", img.stage, img.args["BASE_IMAGE"])
	}
	if p.Result.BaseImage != "nikolaik/python-nodejs:python3.13-nodejs22-slim" || !slices.Contains(p.Result.Tags, p.Plan.Commit.Short()+"-nikolaik_s_python-nodejs_tag_python3.13-nodejs22-slim") {
		t.Fatalf("result %+v", p.Result)
	}
	if _, ok := members["README.md"]; !ok || members["openhands-sdk/NOTES.md"] != "" {
		t.Fatalf("the root .dockerignore was not applied: %q", names(members))
	}
}

func TestTheDockerfilesOwnIgnoreFileBeatsTheRootOneInTheArchiveToo(t *testing.T) {
	src := agentServer(t, map[string]string{
		".dockerignore":                   "openhands-tools\n",
		agentDockerfile + ".dockerignore": "# the agent server's own\n**/*.md\n!README.md\n",
		"docs/guide.md":                   "not for the image",
	})
	p, logs, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir()})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	members := listArchive(t, p.Archive.Path)
	if _, ok := members["openhands-tools/openhands/tools/__init__.py"]; !ok {
		t.Errorf("the root .dockerignore was applied although the Dockerfile has its own: %q", names(members))
	}
	if _, ok := members["docs/guide.md"]; ok {
		t.Errorf("the Dockerfile's own ignore file was not applied: %q", names(members))
	}
	if members["Dockerfile.dockerignore"] != "# the agent server's own\n**/*.md\n!README.md\n" {
		t.Errorf("the archive's root Dockerfile.dockerignore %q: a builder of the archive must read the same rules", members["Dockerfile.dockerignore"])
	}
	if want := "; ignore file: " + agentDockerfile + ".dockerignore (beside the Dockerfile: BuildKit reads it instead of .dockerignore)\n"; !strings.Contains(logs, want) {
		t.Errorf("the log does not say which ignore file applied (%q):\n%s", want, logs)
	}
}

func TestWrongCallsExitTwoAndWriteNothing(t *testing.T) {
	src := agentServer(t, nil)
	bindless := agentServer(t, nil)
	os.Remove(filepath.Join(bindless, "openhands-agent-server/openhands/agent_server/docker/install-extras.sh"))
	gittest.Git(t, bindless, "commit", "-qam", "drop the script the Dockerfile mounts")
	for _, tt := range []struct {
		name string
		env  map[string]string
		code int
		want string
	}{
		{"an unknown TARGET lists the stages", map[string]string{"SOURCE_DIR": src, "TARGET": "fat"}, 2,
			`TARGET="fat" is not a stage of ` + agentDockerfile + `: want one of builder, binary-builder, base-image-minimal, base-image, source, source-minimal, binary, binary-minimal`},
		{"BUILD_ARGS the Dockerfile does not declare", map[string]string{"SOURCE_DIR": src, "BUILD_ARGS": "NOPE=1,UID=2"}, 2,
			"BUILD_ARGS names NOPE, which " + agentDockerfile + " does not declare"},
		{"a missing bind-mount source names the source Dockerfile and line", map[string]string{"SOURCE_DIR": bindless}, 1,
			"the Dockerfile has 1 problem(s)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			env := map[string]string{"OUTPUT_DIR": out}
			for k, v := range tt.env {
				env[k] = v
			}
			_, logs, err := pack(t, env)
			if exitcode.Of(err) != tt.code || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("exit %d, %v: want %d and %q", exitcode.Of(err), err, tt.code, tt.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("OUTPUT_DIR was written")
			}
			if tt.code == 1 && !strings.Contains(logs, "error: "+agentDockerfile+":75: RUN --mount=type=bind source openhands-agent-server/openhands/agent_server/docker/install-extras.sh is not in the build context") {
				t.Fatalf("the problem does not name the source Dockerfile's line:\n%s", logs)
			}
		})
	}
	rep, err := Validate(context.Background(), load(t, map[string]string{"SOURCE_DIR": bindless}).Pack, progress.New(io.Discard, "quiet"))
	if err != nil || len(rep.Problems) != 1 || rep.Problems[0].File != agentDockerfile || rep.Problems[0].Line != 75 || rep.Stages[len(rep.Stages)-1] != "binary-minimal" {
		t.Fatalf("validate: %+v, %v", rep, err)
	}
}

func TestAFileOnlyAStageNotBuiltNeedsIsAWarningForThatTarget(t *testing.T) {
	src := agentServer(t, nil)
	os.Remove(filepath.Join(src, "openhands-agent-server/openhands/agent_server/docker/install-extras.sh")) // only base-image mounts it
	gittest.Git(t, src, "commit", "-qam", "drop the script only base-image mounts")
	const problem = agentDockerfile + ":75: RUN --mount=type=bind source openhands-agent-server/openhands/agent_server/docker/install-extras.sh is not in the build context"
	p, logs, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir(), "TARGET": "source-minimal"})
	if err != nil || exitcode.Of(err) != 0 {
		t.Fatalf("TARGET=source-minimal does not build base-image: %v\n%s", err, logs)
	}
	if want := "warning: " + problem + "; stage base-image is not built for TARGET=source-minimal\n"; strings.Count(logs, want) != 1 || strings.Contains(logs, "error:") {
		t.Fatalf("want one warning line %q:\n%s", want, logs)
	}
	if _, ok := listArchive(t, p.Archive.Path)["Dockerfile"]; !ok {
		t.Fatal("no archive")
	}
	for _, target := range []string{"binary", "source", "base-image"} {
		_, logs, err = pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir(), "TARGET": target})
		if exitcode.Of(err) != 1 || !strings.Contains(logs, "error: "+problem+"\n") {
			t.Fatalf("TARGET=%s builds base-image: exit %d, %v\n%s", target, exitcode.Of(err), err, logs)
		}
	}
	rep, err := Validate(context.Background(), load(t, map[string]string{"SOURCE_DIR": src, "TARGET": "source-minimal"}).Pack, progress.New(io.Discard, "quiet"))
	if err != nil || !rep.OK() || len(rep.Warnings) != 1 || rep.Warnings[0].Stage != "base-image" || rep.Target != "source-minimal" {
		t.Fatalf("validate TARGET=source-minimal: %+v, %v", rep, err)
	}
}

func TestOutputDirHoldingTrackedFilesIsSaid(t *testing.T) {
	files := gittest.Project()
	files["runtime-build/keep.txt"] = "tracked"
	src := gittest.Init(t, t.TempDir(), files)
	_, logs, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": filepath.Join(src, "runtime-build")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, "holds 1 file(s) git tracks (runtime-build/keep.txt): they are not packed") {
		t.Fatalf("no warning:\n%s", logs)
	}
	// The archive now there is not tracked, and is not counted.
	_, logs, err = pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": filepath.Join(src, "runtime-build"), "INCLUDE_UNTRACKED": "true", "CLEAN_OUTPUT": "false"})
	if err != nil || !strings.Contains(logs, "holds 1 file(s) git tracks") {
		t.Fatalf("%v\n%s", err, logs)
	}
	_, logs, _ = pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": filepath.Join(src, "elsewhere")})
	if strings.Contains(logs, "git tracks") {
		t.Fatalf("an OUTPUT_DIR holding no tracked file is not worth a warning:\n%s", logs)
	}
}

func TestReleaseTagsOfSDKRefAndGitHubOutput(t *testing.T) {
	src := agentServer(t, nil)
	sha := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "HEAD"))
	gh := filepath.Join(t.TempDir(), "github-output")
	p, _, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir(), "SDK_REF": "refs/tags/v1.4.2", "GITHUB_REF": "refs/heads/ci", "TARGET": "Source", "GITHUB_OUTPUT": gh})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{sha[:7] + "-python-source", sha + "-python-source", sha[:7] + "-nikolaik_s_python-nodejs_tag_python3.13-nodejs22-slim-source",
		"1-python-source", "1.4-python-source", "1.4.2-python-source"} // SDK_REF wins over GITHUB_REF: no branch tag
	if !slices.Equal(p.Plan.Tags, want) {
		t.Fatalf("tags\n%q\nwant\n%q", p.Plan.Tags, want)
	}
	if img := readImage(t, listArchive(t, p.Archive.Path)["Dockerfile"]); !slices.Equal(img.args["OPENHANDS_BUILD_GIT_REF"], []string{"refs/tags/v1.4.2"}) {
		t.Fatalf("git ref %q", img.args["OPENHANDS_BUILD_GIT_REF"])
	}
	b, _ := os.ReadFile(gh)
	want = append(want, p.ContentTag) // every build carries it too
	if !strings.Contains(string(b), "\ntags="+strings.Join(want, ",")+"\n") {
		t.Fatalf("GITHUB_OUTPUT:\n%s", b)
	}
	if r, _ := result.Read(p.Archive.Path); !slices.Equal(r.Tags, want) || r.Ref != "refs/tags/v1.4.2" {
		t.Fatalf("result file %+v", r)
	}
}

func TestOneTargetsImageNeverSatisfiesAnother(t *testing.T) {
	reg, api := registryServer(t)
	src := agentServer(t, nil)
	short := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "--short=7", "HEAD"))
	out := t.TempDir()
	seen := map[string]bool{}
	for _, target := range []string{"binary", "source-minimal", "binary", "source", "source-minimal"} {
		cfg := load(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out, "RUNTIME_API_URL": api.URL, "RUNTIME_API_KEY": "k",
			"POLL_INTERVAL": "20ms", "TARGET": target})
		log := progress.New(io.Discard, "quiet")
		built, err := upload(context.Background(), cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		want := "registry.test/rt/agent-server:" + short + "-python"
		if target != "binary" {
			want += "-" + target
		}
		again := seen[target] // the third and fifth builds repeat a target
		seen[target] = true
		if again {
			want = "registry.test/rt/agent-server:ctx-" // the image the archive's content tag names
		}
		if !strings.HasPrefix(built.Image, want) || built.Skipped != again {
			t.Fatalf("TARGET=%s: %+v, want %s (skipped: %v)", target, built, want, again)
		}
	}
	if len(reg.builds) != 3 {
		t.Fatalf("%d builds, want one per distinct target", len(reg.builds))
	}
}

func TestUploadSendsWhatContextPackedInTheSameRun(t *testing.T) {
	_, api := registryServer(t)
	src := agentServer(t, nil)
	cfg := load(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir(), "RUNTIME_API_URL": api.URL, "RUNTIME_API_KEY": "k", "POLL_INTERVAL": "20ms"})
	log := progress.New(io.Discard, "quiet")
	ctx := context.Background()
	packed, err := Pack(ctx, cfg.Pack, "", log)
	if err != nil {
		t.Fatal(err)
	}
	// The source changes after packing: Send sends what Pack handed it, it does not plan again.
	gittest.Write(t, src, map[string]string{agentDockerfile: "FROM scratch\nCOPY nowhere /\n"})
	gittest.Git(t, src, "commit", "-qam", "a later commit")
	client, err := NewClient(cfg.API, log)
	if err != nil {
		t.Fatal(err)
	}
	built, err := Send(ctx, client, packed, cfg.API, cfg.Send, "", log)
	if err != nil {
		t.Fatal(err)
	}
	if built.Image != "registry.test/rt/agent-server:"+packed.Plan.Tags[0] {
		t.Fatalf("built %s, want the image of the packed plan (%s)", built.Image, packed.Plan.Tags[0])
	}
	if r, err := result.Read(packed.Archive.Path); err != nil || r.Status != "SUCCESS" || r.SHA256 != packed.Archive.SHA256 {
		t.Fatalf("result file %+v, %v", r, err)
	}
}

func TestARootDockerfileIgnoreFileOfAnotherDockerfileIsLeftOut(t *testing.T) {
	files := gittest.Project()
	files["Dockerfile"] = "FROM scratch\nCOPY README.md /\n"
	files["Dockerfile.dockerignore"] = "openhands\n" // the root Dockerfile's own: it would hide the template's sources
	src := gittest.Init(t, t.TempDir(), files)
	p, _, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir(), "DOCKERFILE": "generated"})
	if err != nil {
		t.Fatal(err)
	}
	members := listArchive(t, p.Archive.Path)
	if _, ok := members["Dockerfile.dockerignore"]; ok {
		t.Fatal("the root Dockerfile's ignore file is in the archive: a builder would apply it to the generated Dockerfile")
	}
	if _, ok := members["openhands/agent_server/__main__.py"]; !ok {
		t.Fatalf("selected with the root .dockerignore, not the other Dockerfile's: %q", names(members))
	}
	q, _, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir()}) // auto: the root Dockerfile, with its own
	if err != nil {
		t.Fatal(err)
	}
	members = listArchive(t, q.Archive.Path)
	if _, ok := members["openhands/agent_server/__main__.py"]; ok || members["Dockerfile.dockerignore"] != "openhands\n" {
		t.Fatalf("the root Dockerfile with its own ignore file: %q", names(members))
	}
}
