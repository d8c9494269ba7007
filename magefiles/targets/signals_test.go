package targets_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/gittest"
)

// output collects a child's stream as it comes.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}
func (o *output) String() string { o.mu.Lock(); defer o.mu.Unlock(); return o.buf.String() }

// waitOutput polls o until it matches want, within a deadline.
func waitOutput(t *testing.T, o *output, want *regexp.Regexp) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !want.MatchString(o.String()) {
		if time.Now().After(deadline) {
			out := o.String()
			t.Fatalf("no %s within 60s:\n%q", want, out[max(0, len(out)-3000):])
		}
		time.Sleep(10 * time.Millisecond) // polling a child's output, with a deadline
	}
}

// startAsFromATerminal starts cmd with SIGINT at its default disposition, as a shell leaves it
// for a foreground job: a test run in the background inherits SIGINT ignored, and exec keeps an
// ignored signal ignored, while one this process catches is reset to the default in the child.
func startAsFromATerminal(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, os.Interrupt)
	defer signal.Stop(caught)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() }) // a failed test leaves no process behind
}

// lastLine is what the terminal shows last: the last line, after the last erase.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	last := lines[len(lines)-1]
	if i := strings.LastIndex(last, "\x1b[2K"); i >= 0 {
		last = last[i+len("\x1b[2K"):]
	}
	return last
}

// barCleared reports whether the last frame of the bar named what was erased before anything
// else was written after it.
func barCleared(out, what string) bool {
	frame := "[runtime-build] " + what
	i := strings.LastIndex(out, frame)
	if i < 0 {
		return false
	}
	rest := out[i+len(frame):]
	end := strings.IndexAny(rest, "\r\n")
	return end >= 0 && strings.HasPrefix(rest[end:], "\r\x1b[2K")
}

// bigCheckout is a checkout whose packing takes a while: a 4 GiB sparse file, untracked.
func bigCheckout(t *testing.T) string {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	f, err := os.Create(filepath.Join(src, "zeros.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(4 << 30); err != nil {
		t.Fatal(err)
	}
	return src
}

func TestASignalWhilePackingLeavesNothing(t *testing.T) {
	for _, tt := range []struct {
		sig  os.Signal
		code int
	}{{os.Interrupt, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tt.sig.String(), func(t *testing.T) {
			cmd := exec.Command(filepath.Join(binDir, "runtimebuild"), "context")
			cmd.Dir = t.TempDir()
			cmd.Env = cleanEnv("SOURCE_DIR="+bigCheckout(t), "INCLUDE_UNTRACKED=true", "PROGRESS=tty", "COLUMNS=80")
			var stdout, stderr output
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			startAsFromATerminal(t, cmd)
			waitOutput(t, &stderr, regexp.MustCompile(`\x1b\[2K\[runtime-build\] packing \d+/\d+ `))
			cmd.Process.Signal(tt.sig)
			if code := exitCode(t, cmd); code != tt.code {
				t.Fatalf("exit %d, want %d\n%q", code, tt.code, stderr.String())
			}
			if last := lastLine(stderr.String()); last != "Error: interrupted: nothing was written" {
				t.Fatalf("last line %q", last)
			}
			if !barCleared(stderr.String(), "packing") {
				t.Fatalf("the bar was not cleared first:\n%q", stderr.String())
			}
			if strings.Contains(stderr.String(), "cancelling mage targets") || stdout.String() != "" {
				t.Fatalf("more than our lines: stdout %q\n%q", stdout.String(), stderr.String())
			}
			if left, _ := os.ReadDir(filepath.Join(cmd.Dir, "runtime-build")); len(left) != 0 {
				t.Fatalf("left behind: %v", left)
			}
		})
	}
}

// slowAPI is a Runtime API whose /build never answers and whose builds never end.
func slowAPI(t *testing.T, hangUpload bool) string {
	return unendingAPI(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if hangUpload {
			<-r.Context().Done()
			return
		}
		io.WriteString(w, `{"build_id":"0123456789abcdef01234567"}`)
	})
}

// unendingAPI is a Runtime API whose builds never end; build answers /build.
func unendingAPI(t *testing.T, build http.HandlerFunc) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/registry_prefix":
			io.WriteString(w, `{"registry_prefix":"registry.test/rt"}`)
		case "/image_exists":
			io.WriteString(w, `{"exists":false}`)
		case "/build":
			build(w, r)
		case "/build_status":
			io.WriteString(w, `{"status":"WORKING"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestCtrlCWhileUploadingOrPolling(t *testing.T) {
	for _, tt := range []struct {
		name, bar, last string
		hang            bool
	}{
		{"uploading", "uploading ", "Error: interrupted while uploading: {archive} and {archive}.json were written, nothing was built; run it again to upload", true},
		{"polling", "build 0123456789abcdef01234567: WORKING ", "Error: interrupted while waiting for build 0123456789abcdef01234567: the build goes on on the server: follow it with: " +
			filepath.Join(binDir, "runtimebuild") + " status 0123456789abcdef01234567", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := gittest.Init(t, t.TempDir(), gittest.Project())
			cmd := exec.Command(filepath.Join(binDir, "runtimebuild"), "upload")
			cmd.Dir = t.TempDir()
			cmd.Env = cleanEnv("SOURCE_DIR="+src, "RUNTIME_API_URL="+slowAPI(t, tt.hang), "RUNTIME_API_KEY=k", "POLL_INTERVAL=50ms", "PROGRESS=tty")
			var stdout, stderr output
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			startAsFromATerminal(t, cmd)
			waitOutput(t, &stderr, regexp.MustCompile(regexp.QuoteMeta("[runtime-build] "+tt.bar)+`\S`))
			cmd.Process.Signal(os.Interrupt)
			if code := exitCode(t, cmd); code != 130 {
				t.Fatalf("exit %d, want 130\n%q", code, stderr.String())
			}
			want := strings.ReplaceAll(tt.last, "{archive}", packedArchive(t, cmd.Dir))
			if last := lastLine(stderr.String()); last != want {
				t.Fatalf("last line %q, want %q", last, want)
			}
			if !barCleared(stderr.String(), tt.bar) {
				t.Fatalf("the bar was not cleared first:\n%q", stderr.String())
			}
			if stdout.String() != "" {
				t.Fatalf("stdout %q after Ctrl-C", stdout.String())
			}
			if left, _ := filepath.Glob(filepath.Join(cmd.Dir, "runtime-build", ".runtimebuild-*")); len(left) != 0 {
				t.Fatalf("temporary files left: %v", left)
			}
		})
	}
}

// packedArchive is the one archive a run in dir left in its OUTPUT_DIR, ./runtime-build, as
// the run names it: relative to dir.
func packedArchive(t *testing.T, dir string) string {
	t.Helper()
	archives, _ := filepath.Glob(filepath.Join(dir, "runtime-build", "*.tar.gz"))
	if len(archives) != 1 {
		t.Fatalf("archives left in %s: %q, want 1", dir, archives)
	}
	return filepath.Join("runtime-build", filepath.Base(archives[0]))
}

// fakeAPI is a Runtime API that reports digests, may say that the image exists, and has no /build_logs.
func fakeAPI(t *testing.T, exists bool) (string, *int) {
	logs := new(int)
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/registry_prefix":
			io.WriteString(w, `{"registry_prefix":"registry.test/rt"}`)
		case "/image_exists":
			fmt.Fprintf(w, `{"exists":%v}`, exists)
		case "/build":
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, `{"build_id":"b-1"}`)
		case "/build_status":
			fmt.Fprintf(w, `{"status":"SUCCESS","image":"registry.test/rt/agent-server:final","digest":"sha256:%s"}`, strings.Repeat("ab", 32))
		default:
			mu.Lock()
			*logs++
			mu.Unlock()
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, logs
}

func runBinary(t *testing.T, dir string, env []string, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "runtimebuild"), args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", args, err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

func TestTheResultLineNamesTheImageByDigest(t *testing.T) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	url, logs := fakeAPI(t, false)
	dir := t.TempDir()
	out := filepath.Join(dir, "github-output")
	stdout, stderr := runBinary(t, dir, cleanEnv("SOURCE_DIR="+src, "RUNTIME_API_URL="+url, "RUNTIME_API_KEY=k", "GITHUB_OUTPUT="+out), "upload")
	ref := "registry.test/rt/agent-server:final@sha256:" + strings.Repeat("ab", 32)
	if stdout != ref+"\n" {
		t.Fatalf("stdout %q, want %q", stdout, ref+"\n")
	}
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), "\nimage="+ref+"\n") {
		t.Fatalf("GITHUB_OUTPUT:\n%s", b)
	}
	if *logs != 1 || strings.Contains(stderr, "build_logs") || strings.Contains(stderr, "404") {
		t.Fatalf("/build_logs asked %d times (want once: its 404 means unsupported), or reported:\n%s", *logs, stderr)
	}
}

func TestASkippedBuildStillReportsTheImage(t *testing.T) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	url, _ := fakeAPI(t, true)
	dir := t.TempDir()
	out := filepath.Join(dir, "github-output")
	stdout, stderr := runBinary(t, dir, cleanEnv("SOURCE_DIR="+src, "RUNTIME_API_URL="+url, "RUNTIME_API_KEY=k", "GITHUB_OUTPUT="+out, "TARGET_IMAGE=registry.test/rt/app:1"), "all")
	// The image named by the archive's content tag: TARGET_IMAGE's tag may since name another build.
	image := strings.TrimSuffix(stdout, "\n")
	if !regexp.MustCompile(`\Aregistry\.test/rt/app:ctx-[0-9a-f]{16}\z`).MatchString(image) || !strings.Contains(stderr, image+" exists already: it was built from this very archive") {
		t.Fatalf("stdout %q\n%s", stdout, stderr)
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), "\nimage="+image+"\n") {
		t.Fatalf("GITHUB_OUTPUT has no image:\n%s", b)
	}
	results, _ := filepath.Glob(filepath.Join(dir, "runtime-build", "*.json"))
	if len(results) != 1 {
		t.Fatalf("result files %v", results)
	}
	var r struct{ Image, Status string }
	data, _ := os.ReadFile(results[0])
	if err := json.Unmarshal(data, &r); err != nil || r.Image != image || r.Status != "SKIPPED" {
		t.Fatalf("result file %s: %v", data, err)
	}
}

func TestVersion(t *testing.T) {
	stdout, _ := runBinary(t, t.TempDir(), cleanEnv(), "version")
	if !regexp.MustCompile(`\Aruntimebuild \(devel\) \(revision [0-9a-f]{12}(, modified)?; go1\.\d+[^)]*\)\n\z`).MatchString(stdout) {
		t.Fatalf("version printed %q", stdout)
	}
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	dir := t.TempDir()
	runBinary(t, dir, cleanEnv("SOURCE_DIR="+src), "context")
	results, _ := filepath.Glob(filepath.Join(dir, "runtime-build", "*.json"))
	data, _ := os.ReadFile(results[0])
	if !strings.Contains(string(data), `"tool": "`+strings.TrimSpace(stdout)+`"`) {
		t.Fatalf("the result file does not record the version %q:\n%s", stdout, data)
	}
}

func TestTheCompiledBinaryIsStatic(t *testing.T) {
	out, err := exec.Command("file", filepath.Join(binDir, "runtimebuild")).CombinedOutput()
	if errors.Is(err, exec.ErrNotFound) {
		t.Skip("SKIPPED LOUDLY: no `file` command to tell static binaries")
	}
	if err != nil || !strings.Contains(string(out), "statically linked") {
		t.Fatalf("file: %v %s", err, out)
	}
}

// TestCompileForAnotherPlatformWithSpacedFlags runs the entry point as the README shows, on the
// smallest magefile (-d testdata/cross): what it proves is that -goos, -goarch (values as the
// next word) and a relative -compile path reach mage's build; that the targets themselves build
// for arm64 is .ci/run's cross-build (compiling them all here took minutes).
func TestCompileForAnotherPlatformWithSpacedFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the standard library on a cold cache; not in -short")
	}
	t.Parallel()
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	out := filepath.Join(t.TempDir(), "bin", "runtimebuild-arm64")
	rel, _ := filepath.Rel(root, out)
	cmd := exec.Command("go", "run", "magefile.go", "-d", filepath.Join("magefiles", "targets", "testdata", "cross"),
		"-goos", "linux", "-goarch", "arm64", "-compile", rel)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	desc, err := exec.Command("file", out).CombinedOutput()
	if err != nil {
		t.Fatalf("no binary where asked (%s): %v %s", out, err, desc)
	}
	if !strings.Contains(string(desc), "ARM aarch64") || !strings.Contains(string(desc), "statically linked") {
		t.Fatalf("file %s: %s", out, desc)
	}
	if _, err := os.Stat(filepath.Join(root, "magefiles", "bin")); err == nil {
		t.Fatal("the output landed in magefiles/bin/")
	}
}

func TestTextFromTheServerIsPrintedEscaped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/build_status":
			io.WriteString(w, `{"status":"FAILURE","error":"boom\n::error::forged\r\u001b[31mred"}`)
		case "/build_logs":
			io.WriteString(w, "step 1\n::warning::forged too\n")
		}
	}))
	defer srv.Close()
	cmd := exec.Command(filepath.Join(binDir, "runtimebuild"), "status", "b-1")
	cmd.Env = cleanEnv("RUNTIME_API_URL="+srv.URL, "RUNTIME_API_KEY=k", "GITHUB_ACTIONS=true")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err == nil {
		t.Fatal("a failed build exited 0")
	}
	all := stdout.String() + stderr.String()
	if strings.ContainsAny(all, "\r\x1b") || regexp.MustCompile(`(?m)^::(error|warning)::forged`).MatchString(all) {
		t.Fatalf("server text reached the output raw:\n%q", all)
	}
	if !strings.Contains(stderr.String(), `Error: build b-1 ended FAILURE: boom\n::error::forged\r\x1b[31mred`) ||
		!strings.Contains(stderr.String(), "| ::warning::forged too") {
		t.Fatalf("the server's words are not shown escaped:\n%s", stderr.String())
	}
}

func TestStatusOfABuildWhoseServerNamesNoImagePrintsNoEmptyResult(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/build_status" {
			io.WriteString(w, `{"status":"SUCCESS"}`)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	stdout, stderr := runBinary(t, t.TempDir(), cleanEnv("RUNTIME_API_URL="+srv.URL, "RUNTIME_API_KEY=k"), "status", "b-1")
	if stdout != "" || !strings.Contains(stderr, "warning: build b-1 succeeded, and the Runtime API named no image") {
		t.Fatalf("stdout %q\n%s", stdout, stderr)
	}
}

// In every PROGRESS mode, plain above all (CI: no bar is ever drawn), the targets own SIGINT
// from the start of the run: Ctrl-C, even pressed twice, is 130 every time, SIGTERM 143, and
// mage's own handler never speaks ("cancelling mage targets ...", its exit 1 at a second Ctrl-C).
func TestCtrlCRepeatedIsAlways130(t *testing.T) {
	polled := make(chan struct{}, 1)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/build_status" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, `{"status":"WORKING"}`)
		select {
		case polled <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(api.Close)
	modes := []string{"plain", "plain", "quiet", "plain", "tty", "plain", "plain", "quiet", "plain", "tty", "plain"}
	for i, mode := range modes {
		sig, code := os.Signal(os.Interrupt), 130
		if i == len(modes)-1 {
			sig, code = syscall.SIGTERM, 143
		}
		cmd := exec.Command(filepath.Join(binDir, "runtimebuild"), "status", "0123456789abcdef01234567")
		cmd.Dir = t.TempDir()
		cmd.Env = cleanEnv("RUNTIME_API_URL="+api.URL, "RUNTIME_API_KEY=k", "POLL_INTERVAL=50ms", "PROGRESS="+mode)
		var stdout, stderr output
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		select { // a poll of an earlier run
		case <-polled:
		default:
		}
		startAsFromATerminal(t, cmd)
		select {
		case <-polled: // the run is following the build
		case <-time.After(60 * time.Second):
			t.Fatalf("run %d (%s): no poll within 60s\n%s", i, mode, stderr.String())
		}
		cmd.Process.Signal(sig)
		cmd.Process.Signal(sig) // pressed again while the run cleans up
		if got := exitCode(t, cmd); got != code {
			t.Fatalf("run %d (%s): %v gave exit %d, want %d\n%s", i, mode, sig, got, code, stderr.String())
		}
		if strings.Contains(stderr.String(), "cancelling mage targets") || strings.Contains(stderr.String(), "exiting mage") {
			t.Fatalf("run %d (%s): mage's own handler acted:\n%s", i, mode, stderr.String())
		}
		if last := lastLine(stderr.String()); !strings.HasPrefix(last, "Error: interrupted while waiting for build 0123456789abcdef01234567") {
			t.Fatalf("run %d (%s): last line %q", i, mode, last)
		}
	}
}

// serve is stopped by the same owner of the signals: Ctrl-C 130, SIGTERM 143, once it has
// drained, and mage's handler stays silent.
func TestServeStopsAt130Or143(t *testing.T) {
	for _, tt := range []struct {
		sig  os.Signal
		code int
	}{{os.Interrupt, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tt.sig.String(), func(t *testing.T) {
			cmd := exec.Command(filepath.Join(binDir, "runtimebuild"), "serve")
			cmd.Dir = t.TempDir()
			cmd.Env = cleanEnv("SERVE_ADDR=127.0.0.1:0", "SERVE_BUILDER=check", "RUNTIME_API_KEY=k", "PROGRESS=plain", "SERVE_STATE_DIR="+t.TempDir())
			var stdout, stderr output
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			startAsFromATerminal(t, cmd)
			waitOutput(t, &stderr, regexp.MustCompile(`Runtime API listening on http://127\.0\.0\.1:\d+`))
			cmd.Process.Signal(tt.sig)
			if code := exitCode(t, cmd); code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", code, tt.code, stderr.String())
			}
			if strings.Contains(stderr.String(), "cancelling mage targets") {
				t.Fatalf("mage's own handler acted:\n%s", stderr.String())
			}
			if last := lastLine(stderr.String()); !strings.HasPrefix(last, "Error: interrupted: serve stopped") {
				t.Fatalf("last line %q", last)
			}
		})
	}
}
