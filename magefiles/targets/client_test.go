package targets_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/apitest"
	"github.com/runtimebuild/runtimebuild/internal/gittest"
	"github.com/runtimebuild/runtimebuild/internal/nettest"
)

// runFailing runs the compiled runtimebuild with args in a fresh directory, a failure being an
// outcome like another, and returns its exit code, stdout, stderr and the directory.
func runFailing(t *testing.T, args []string, env ...string) (code int, stdout, stderr, dir string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "runtimebuild"), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv(env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, out.String(), errOut.String(), cmd.Dir
}

// lastLineOf is the last line of a child's stderr.
func lastLineOf(stderr string) string {
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestAWrongRuntimeAPIURLFailsBeforePacking(t *testing.T) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	refused := nettest.ClosedURL(t)
	const unknown = "runtime-api.invalid"
	var dns *net.DNSError
	_, err := net.DefaultResolver.LookupHost(context.Background(), unknown)
	resolverSaysNoSuchHost := errors.As(err, &dns) && dns.IsNotFound
	for _, tt := range []struct {
		name, url, want string
	}{
		{"nothing listens", refused, "nothing listens at " + refused + " (connection refused): check RUNTIME_API_URL (its port), and that the Runtime API is running"},
		{"an unknown host", "http://" + unknown, `the host name "runtime-api.invalid" of http://runtime-api.invalid does not resolve (no such host): check the host name in RUNTIME_API_URL`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.url, unknown) && !resolverSaysNoSuchHost {
				t.Skipf("this machine's resolver does not answer \"no such host\" for %s (%v)", unknown, err)
			}
			for _, target := range []string{"upload", "all"} {
				code, stdout, stderr, dir := runFailing(t, []string{target}, "SOURCE_DIR="+src, "RUNTIME_API_URL="+tt.url, "RUNTIME_API_KEY=k",
					"ALLOW_INSECURE_HTTP=true", "BUILD_TIMEOUT=30m", "PROGRESS=plain")
				if code != 1 || !strings.Contains(lastLineOf(stderr), tt.want) || stdout != "" {
					t.Fatalf("%s: exit %d, stdout %q, last line %q; want 1 and %q\n%s", target, code, stdout, lastLineOf(stderr), tt.want, stderr)
				}
				if strings.Contains(stderr, "retrying") || strings.Contains(stderr, "packing") {
					t.Fatalf("%s: retried or packed before failing:\n%s", target, stderr)
				}
				if left, _ := os.ReadDir(filepath.Join(dir, "runtime-build")); len(left) != 0 {
					t.Fatalf("%s: written before the server was reached: %v", target, left)
				}
			}
		})
	}
}

// stalledAPI answers /registry_prefix and never answers /image_exists: the run waits there,
// after packing.
func stalledAPI(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/registry_prefix":
			io.WriteString(w, `{"registry_prefix":"registry.test/rt"}`)
		case "/image_exists":
			<-r.Context().Done()
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestCtrlCAfterPackingSaysTheArchiveWasWritten(t *testing.T) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	cmd := exec.Command(filepath.Join(binDir, "runtimebuild"), "upload")
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv("SOURCE_DIR="+src, "RUNTIME_API_URL="+stalledAPI(t), "RUNTIME_API_KEY=k", "PROGRESS=tty")
	var stdout, stderr output
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	startAsFromATerminal(t, cmd)
	waitOutput(t, &stderr, regexp.MustCompile(`packed \d+ files`))
	cmd.Process.Signal(os.Interrupt)
	if code := exitCode(t, cmd); code != 130 {
		t.Fatalf("exit %d, want 130\n%q", code, stderr.String())
	}
	last := lastLine(stderr.String())
	archives, _ := filepath.Glob(filepath.Join(cmd.Dir, "runtime-build", "*.tar.gz"))
	if len(archives) != 1 {
		t.Fatalf("archives %v, want the one packed", archives)
	}
	if _, err := os.Stat(archives[0] + ".json"); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(cmd.Dir, archives[0])
	if !strings.HasPrefix(last, "Error: interrupted while asking the Runtime API: ") || !strings.Contains(last, rel+" and ") ||
		!strings.Contains(last, rel+".json were written, nothing was sent") || strings.Contains(last, "nothing was written") {
		t.Fatalf("last line %q: want it to name %s and its .json", last, rel)
	}
}

func TestAHostileBuildIDEndsTheUploadAsOneEscapedLine(t *testing.T) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	apiURL, _ := apitest.Accepting(t, `"x; touch /tmp/PWNED #\u202e"`)
	out := filepath.Join(t.TempDir(), "github_output")
	code, stdout, stderr, _ := runFailing(t, []string{"upload"}, "SOURCE_DIR="+src, "RUNTIME_API_URL="+apiURL, "RUNTIME_API_KEY=k",
		"GITHUB_OUTPUT="+out, "PROGRESS=plain")
	last := lastLineOf(stderr)
	if code != 1 || stdout != "" || !strings.Contains(last, `the server answered the build_id "x; touch /tmp/PWNED #\u202e", which is no build ID`) {
		t.Fatalf("exit %d, stdout %q, last line %q\n%s", code, stdout, last, stderr)
	}
	if strings.Contains(stderr, "\u202e") || strings.Contains(stderr, "status x;") {
		t.Fatalf("the ID reached the output as it came:\n%s", stderr)
	}
	if b, _ := os.ReadFile(out); strings.Contains(string(b), "build_id") {
		t.Fatalf("GITHUB_OUTPUT %q", b)
	}
}

func TestCancel(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		switch id := r.URL.Query().Get("build_id"); {
		case r.URL.Path != "/build/cancel":
			http.NotFound(w, r)
		case id == "b-going":
			io.WriteString(w, `{"build_id":"b-going","status":"CANCELLED"}`)
		case id == "b-done":
			io.WriteString(w, `{"build_id":"b-done","status":"SUCCESS"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"detail":"build \"`+id+`\" not found"}`)
		}
	}))
	defer srv.Close()
	noEndpoint := httptest.NewServer(http.NotFoundHandler())
	defer noEndpoint.Close()
	for _, tt := range []struct {
		name, url, id string
		code          int
		stdout, last  string
	}{
		{"a build going on", srv.URL, "b-going", 0, "CANCELLED\n", "build b-going cancelled"},
		{"a build that had ended", srv.URL, "b-done", 0, "SUCCESS\n", "build b-done had already ended SUCCESS: nothing to cancel"},
		{"a build the server does not know", srv.URL, "b-gone", 1, "", "the Runtime API does not know build b-gone"},
		{"a server without the endpoint", noEndpoint.URL, "b-going", 1, "", "the Runtime API at " + noEndpoint.URL + " offers no cancel endpoint"},
		{"no build ID", srv.URL, "", 2, "", "cancel needs a build ID: "},
		{"something that is no build ID", srv.URL, "b1;reboot", 2, "", `cancel: "b1;reboot" is no build ID`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr, _ := runFailing(t, []string{"cancel", tt.id}, "RUNTIME_API_URL="+tt.url, "RUNTIME_API_KEY=k", "PROGRESS=plain")
			if code != tt.code || stdout != tt.stdout || !strings.Contains(lastLineOf(stderr), tt.last) {
				t.Fatalf("exit %d, stdout %q, last line %q; want %d, %q, %q\n%s", code, stdout, lastLineOf(stderr), tt.code, tt.stdout, tt.last, stderr)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) == 0 || asked[0] != "POST /build/cancel?build_id=b-going" {
		t.Fatalf("requests %q", asked)
	}
}

func TestPollingACancelledBuildSaysItWasCancelled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/build_status":
			io.WriteString(w, `{"build_id":"b1","status":"CANCELLED","error":"serve stopped (SIGTERM)"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	code, stdout, stderr, _ := runFailing(t, []string{"status", "b1"}, "RUNTIME_API_URL="+srv.URL, "RUNTIME_API_KEY=k", "PROGRESS=plain")
	if code != 1 || stdout != "" || !strings.Contains(lastLineOf(stderr), "build b1 was cancelled: serve stopped (SIGTERM)") || strings.Contains(stderr, "goes on") {
		t.Fatalf("exit %d, stdout %q\n%s", code, stdout, stderr)
	}
}
