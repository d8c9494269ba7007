package targets_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/gittest"
	"github.com/runtimebuild/runtimebuild/internal/pipeline"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// binDir holds the runtimebuild binary compiled from the magefiles, as CI builds it.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "runtimebuild-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// go run magefile.go -compile with a path relative to the repository root, as the README
	// words it: the zero-install entry point and the CI binary in one step.
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rel, err := filepath.Rel(root, filepath.Join(dir, "runtimebuild"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cmd := exec.Command("go", "run", "magefile.go", "-compile", rel)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "compiling the targets: %v\n%s", err, out)
		return 1
	}
	if _, err := os.Stat(filepath.Join(dir, "runtimebuild")); err != nil {
		fmt.Fprintf(os.Stderr, "go run magefile.go -compile %s wrote no binary there: %v\n", rel, err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// userEnv is the environment a user's shell would have, with git made deterministic.
func userEnv(e *testscript.Env) {
	e.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, kv := range gittest.Env() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "GIT_") {
			e.Setenv(k, v)
		}
	}
}

// cleanEnv is the environment of a child process: a user's shell with nothing of the
// caller's runtimebuild or CI settings (an exported RUNTIME_API_URL must not leak into a test),
// git made deterministic, and extra on top.
func cleanEnv(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOPROXY", "GOTOOLCHAIN"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for _, kv := range gittest.Env() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "GIT_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

const apiKey = "rk-e2e-5d0c1b7a-secret"

// startServe runs the serve job in this process (SERVE_BUILDER=check) and returns its URL.
func startServe(t testing.TB) (string, func()) {
	state := t.TempDir()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"SERVE_ADDR": "127.0.0.1:0", "SERVE_BUILDER": "check", "RUNTIME_API_KEY": apiKey,
			"SERVE_REGISTRY_PREFIX": "registry.test/rt", "SERVE_STATE_DIR": state}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- pipeline.Serve(ctx, cfg.Serve, progress.New(io.Discard, "quiet"), func(a string) { addr <- a })
	}()
	select {
	case a := <-addr:
		return "http://" + a, func() { cancel(); <-done }
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	cancel()
	return "", nil
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(e *testscript.Env) error {
			userEnv(e)
			url, stop := startServe(t)
			e.Defer(stop)
			e.Setenv("API_URL", url)
			e.Setenv("API_KEY", apiKey)
			reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
			e.Defer(reg.Close)
			img, err := random.Image(32<<10, 2)
			if err != nil {
				return err
			}
			ref := strings.TrimPrefix(reg.URL, "http://") + "/team/app:1.0"
			parsed, _ := name.ParseReference(ref)
			if err := remote.Write(parsed, img); err != nil {
				return err
			}
			e.Setenv("IMAGE_REF", ref)
			e.Setenv("REGISTRY", strings.TrimPrefix(reg.URL, "http://"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// resultfield NAME VAR: sets $VAR to field NAME of the one result file in runtime-build/.
			"resultfield": func(ts *testscript.TestScript, neg bool, args []string) {
				matches, _ := filepath.Glob(ts.MkAbs("runtime-build/*.json"))
				if len(matches) != 1 || len(args) != 2 {
					ts.Fatalf("resultfield NAME VAR: want one result file, found %d", len(matches))
				}
				var r map[string]any
				b, _ := os.ReadFile(matches[0])
				ts.Check(json.Unmarshal(b, &r))
				ts.Setenv(args[1], fmt.Sprint(r[args[0]]))
			},
		},
	})
}

// TestExitCodes runs the binary as CI does and checks the exit code and the one-line error of
// each class of failure.
func TestExitCodes(t *testing.T) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	tests := []struct {
		name string
		args []string
		env  []string
		code int
		want string
	}{
		{"an unknown TARGET lists the four", []string{"context"}, []string{"TARGET=fat"}, 2, "binary, binary-minimal, source, source-minimal"},
		{"a bad boolean names the variable", []string{"context"}, []string{"CLEAN_OUTPUT=maybe"}, 2, `CLEAN_OUTPUT="maybe"`},
		{"a missing SOURCE_DIR", []string{"context"}, []string{"SOURCE_DIR=/does/not/exist"}, 2, "SOURCE_DIR"},
		{"an unknown target name", []string{"contxt"}, nil, 2, "Unknown target"},
		{"upload without the Runtime API", []string{"upload"}, nil, 2, "RUNTIME_API_URL and RUNTIME_API_KEY are not set: set RUNTIME_API_URL"},
		{"image with a bad reference", []string{"image", "Bad::Ref"}, []string{"RUNTIME_API_URL=http://127.0.0.1:1", "RUNTIME_API_KEY=k"}, 2, "not a valid image reference"},
		{"image with a bad flag value", []string{"image", "a/b:c", "-timeout=0"}, []string{"RUNTIME_API_URL=http://127.0.0.1:1", "RUNTIME_API_KEY=k"}, 2, "want a positive Go duration"},
		{"image with a timeout that is no duration", []string{"image", "a/b:c", "-timeout=soon"}, []string{"RUNTIME_API_URL=http://127.0.0.1:1", "RUNTIME_API_KEY=k"}, 2, `-timeout=soon`},
		{"a bad variable context does not read does not stop it", []string{"context"}, []string{"PULL=yes", "POLL_INTERVAL=often", "SERVE_WORKERS=-1"}, 0, "sha256:"},
		{"but stops the target that reads it", []string{"image", "a/b:c"}, []string{"PULL=yes", "RUNTIME_API_URL=http://127.0.0.1:1", "RUNTIME_API_KEY=k"}, 2, `PULL="yes" is not valid`},
		{"plain http to another host", []string{"upload"}, []string{"RUNTIME_API_URL=http://api.example.com", "RUNTIME_API_KEY=k"}, 2, "ALLOW_INSECURE_HTTP"},
		{"a Runtime API that does not answer", []string{"upload"}, []string{"RUNTIME_API_URL=http://127.0.0.1:1", "RUNTIME_API_KEY=k", "BUILD_TIMEOUT=2s"}, 1, "registry prefix"},
		{"a usage error inside a mage dependency keeps its code", []string{"all"}, []string{"INCLUDE=nothing-matches"}, 2, `INCLUDE pattern "nothing-matches" matches no file`},
		{"serve without an engine says how to go on", []string{"serve"}, []string{"DOCKER_HOST=unix://" + filepath.Join(t.TempDir(), "no-engine.sock"), "RUNTIME_API_KEY=k"}, 1, "set SERVE_BUILDER=check"},
		{"success", []string{"context"}, nil, 0, "sha256:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(binDir, "runtimebuild"), tt.args...)
			cmd.Dir = t.TempDir()
			cmd.Env = cleanEnv(append([]string{"SOURCE_DIR=" + src}, tt.env...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if code != tt.code || !strings.Contains(lines[len(lines)-1], tt.want) {
				t.Fatalf("exit %d, want %d; last line %q, want it to contain %q\n%s", code, tt.code, lines[len(lines)-1], tt.want, stderr.String())
			}
			if code == 2 { // the call was wrong: nothing may be written
				if left, _ := os.ReadDir(filepath.Join(cmd.Dir, "runtime-build")); len(left) != 0 {
					t.Fatalf("left behind: %v", left)
				}
			}
		})
	}
}

func TestUnderGitHubActionsAFailureIsAlsoAnAnnotation(t *testing.T) {
	for _, tt := range []struct {
		name, ghActions, want string
	}{
		{"GITHUB_ACTIONS=true", "true", "::error title=runtimebuild::TARGET=\"fat one\" is not valid: want a stage name of the Dockerfile (the template's: binary, binary-minimal, source, source-minimal)\n"},
		{"outside GitHub Actions", "", ""},
		{"a value the runner never sets", "yes", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(binDir, "runtimebuild"), "context")
			cmd.Dir = t.TempDir()
			cmd.Env = cleanEnv("TARGET=fat one", "GITHUB_ACTIONS="+tt.ghActions)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("err %v, want exit 2\n%s", err, stderr.String())
			}
			if stdout.Len() != 0 { // `image=$(runtimebuild all)` takes stdout: only a result goes there
				t.Fatalf("stdout %q, want nothing", stdout.String())
			}
			if got := strings.Count(stderr.String(), "::error"); tt.want != "" && (got != 1 || !strings.Contains(stderr.String(), tt.want)) || tt.want == "" && got != 0 {
				t.Fatalf("stderr holds %d annotations, want %q:\n%s", got, tt.want, stderr.String())
			}
		})
	}
}

// blockingBuilder never finishes a build by itself.
type blockingBuilder struct{}

func (blockingBuilder) Build(ctx context.Context, job *server.Job, log io.Writer) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}
func (blockingBuilder) ImageExists(context.Context, string) (bool, error) { return false, nil }

// startBlocking serves a Runtime API whose builds go on until the server stops.
func startBlocking(t *testing.T) string {
	srv, err := server.New(server.Options{Key: apiKey, Builder: blockingBuilder{}, WorkDir: filepath.Join(t.TempDir(), "w")})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return hs.URL
}

// startUpload runs `runtimebuild upload` on a fixture checkout and returns the command and a
// channel of its stderr lines.
func startUpload(t *testing.T, env ...string) (*exec.Cmd, string, <-chan string) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	cmd := exec.Command(filepath.Join(binDir, "runtimebuild"), "upload")
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv(append([]string{"SOURCE_DIR=" + src, "RUNTIME_API_KEY=" + apiKey, "POLL_INTERVAL=50ms"}, env...)...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return cmd, cmd.Dir, lines
}

// waitFor reads lines until one contains want, within a deadline; it returns all lines read.
func waitFor(t *testing.T, lines <-chan string, want string) []string {
	var seen []string
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the output ended without %q:\n%s", want, strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			if strings.Contains(l, want) {
				return seen
			}
		case <-deadline:
			t.Fatalf("no %q within 20s:\n%s", want, strings.Join(seen, "\n"))
		}
	}
}

func exitCode(t *testing.T, cmd *exec.Cmd) int {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the process did not end within 10s")
	}
	return -1
}

var buildIDPattern = regexp.MustCompile(`build ([0-9a-f]{24}) accepted`)

func TestBuildTimeoutEndsWithTheResumeCommand(t *testing.T) {
	cmd, _, lines := startUpload(t, "RUNTIME_API_URL="+startBlocking(t), "BUILD_TIMEOUT=1s")
	seen := waitFor(t, lines, "BUILD_TIMEOUT=1s: time limit reached")
	if code := exitCode(t, cmd); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	last := seen[len(seen)-1]
	bin := filepath.Join(binDir, "runtimebuild") // the compiled binary names itself as it was started
	if id := buildIDPattern.FindStringSubmatch(strings.Join(seen, "\n")); id == nil || !strings.HasSuffix(last, "follow it with: "+bin+" status "+id[1]) {
		t.Fatalf("the timeout does not say how to resume:\n%s", strings.Join(seen, "\n"))
	}
}

func TestTheTargetsDescribeThemselves(t *testing.T) {
	bin := filepath.Join(binDir, "runtimebuild")
	out, err := exec.Command(bin, "-l").CombinedOutput()
	if err != nil {
		t.Fatalf("-l: %v\n%s", err, out)
	}
	for _, target := range []string{"all", "context*", "image", "serve", "status", "upload", "validate", "version"} {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(target) + ` +\S.*\.$`).Match(out) {
			t.Errorf("-l has no one-line summary for %s:\n%s", target, out)
		}
	}
	for target, want := range map[string][]string{
		"context":  {"SOURCE_DIR", "OUTPUT_DIR", "TARGET", "CUSTOM_TAGS", "DOCKERFILE_TEMPLATE"},
		"upload":   {"RUNTIME_API_URL", "RUNTIME_API_KEY", "UPLOAD_FORMAT", "BUILD_TIMEOUT"},
		"status":   {"<buildID>", "POLL_INTERVAL"},
		"image":    {"<ref>", "-tags=<string>", "-timeout=<string>", "Go duration", "IMAGE_SOURCE", "PLATFORM", "PULL"},
		"version":  {"VCS revision"},
		"serve":    {"SERVE_ADDR", "SERVE_BUILDER", "SERVE_MAX_UPLOAD"},
		"validate": {"what context reads"},
		"all":      {"NO_UPLOAD"},
	} {
		out, err := exec.Command(bin, "-h", target).CombinedOutput()
		if err != nil {
			t.Fatalf("-h %s: %v\n%s", target, err, out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("-h %s does not mention %s:\n%s", target, w, out)
			}
		}
	}
}
