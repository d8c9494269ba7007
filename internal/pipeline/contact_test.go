package pipeline

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/apitest"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/gittest"
	"github.com/runtimebuild/runtimebuild/internal/nettest"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// answering is a Runtime API that answers every path with code and body.
func answering(t *testing.T, code int, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestReachFailsBeforeAnyWorkOnlyWhenTheServerIsWrongForThisRun(t *testing.T) {
	refused := nettest.ClosedURL(t)
	other := answering(t, 200, `{"registry_prefix":"evil.example/rt"}`)
	redirected := httptest.NewServer(http.RedirectHandler(other+"/registry_prefix", http.StatusFound))
	t.Cleanup(redirected.Close)
	for _, tt := range []struct {
		name, url, targetImage string
		want                   string // "" when reached
	}{
		{"a prefix is all it takes", answering(t, 200, `{"registry_prefix":"r.test/rt"}`), "", ""},
		{"nothing listens: check the URL", refused, "", "connection refused): check RUNTIME_API_URL (its port), and that the Runtime API is running"},
		{"nothing listens, TARGET_IMAGE or not", refused, "r.test/app:1", "connection refused): check RUNTIME_API_URL"},
		{"a redirect elsewhere", redirected.URL, "r.test/app:1", "redirecting to another origin, " + other + "/registry_prefix"},
		{"a wrong key", answering(t, 401, `{"detail":"bad key"}`), "r.test/app:1", "401 Unauthorized: bad key (check RUNTIME_API_KEY)"},
		{"a web page, not the API", answering(t, 200, `<html>hello</html>`), "r.test/app:1", "not the expected JSON"},
		{"no /registry_prefix needs TARGET_IMAGE", answering(t, 404, `{"detail":"Not Found"}`), "", "404 Not Found: Not Found; check RUNTIME_API_URL, or name the image yourself with TARGET_IMAGE"},
		{"no /registry_prefix, and TARGET_IMAGE names the image", answering(t, 404, `{"detail":"Not Found"}`), "r.test/app:1", ""},
		{"no registry_prefix in the answer, and TARGET_IMAGE", answering(t, 200, `{}`), "r.test/app:1", ""},
		{"a prefix no image name can follow", answering(t, 200, `{"registry_prefix":"reg.example/rt\n::error::INJ"}`), "",
			`GET /registry_prefix answered "reg.example/rt\n::error::INJ", which is no registry and path an image name can follow`},
		{"a prefix in capitals", answering(t, 200, `{"registry_prefix":"reg.example/RT"}`), "", `"reg.example/RT", which is no registry`},
		{"a prefix no image name can follow, and TARGET_IMAGE", answering(t, 200, `{"registry_prefix":"reg.example/rt\n::error::INJ"}`), "r.test/app:1", ""},
		{"a prefix that is a registry with a port", answering(t, 200, `{"registry_prefix":"localhost:5000/"}`), "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := load(t, map[string]string{"RUNTIME_API_URL": tt.url, "RUNTIME_API_KEY": "k", "TARGET_IMAGE": tt.targetImage})
			client, err := NewClient(cfg.API, progress.New(io.Discard, "quiet"))
			if err != nil {
				t.Fatal(err)
			}
			err = Advise(Reach(context.Background(), client, cfg.API, cfg.Pack.TargetImage))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("not reached: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want %q", err, tt.want)
			case err != nil && strings.ContainsAny(err.Error(), "\r\n"):
				t.Fatalf("err = %q, want one line", err)
			case err != nil && exitcode.Of(err) != exitcode.Failure:
				t.Fatalf("exit %d, want %d: the work failed, the call was right", exitcode.Of(err), exitcode.Failure)
			}
		})
	}
}

func TestCtrlCWhileReachingSaysNothingWasWritten(t *testing.T) {
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hung.Close)
	cfg := load(t, map[string]string{"RUNTIME_API_URL": hung.URL, "RUNTIME_API_KEY": "k"})
	client, err := NewClient(cfg.API, progress.New(io.Discard, "quiet"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = Reach(ctx, client, cfg.API, cfg.Pack.TargetImage)
	var ie *InterruptedError
	if !errors.As(err, &ie) || ie.Advice != "nothing was written" {
		t.Fatalf("err = %v", err)
	}
}

// A Ctrl-C once the archive is packed says it is there: "nothing was written" was a lie (issue 16).
func TestAnInterruptionAfterPackingNamesWhatWasWritten(t *testing.T) {
	err := interruptedAfterPacking(context.Canceled, "/out/a.tar.gz", "asking the Runtime API")
	if err == nil || err.Error() != "interrupted while asking the Runtime API: /out/a.tar.gz and /out/a.tar.gz.json were written, nothing was sent; run it again to upload" {
		t.Fatalf("%v", err)
	}
	kept := &InterruptedError{While: "uploading", Advice: "nothing was built"}
	if got := interruptedAfterPacking(kept, "/out/a.tar.gz", "x"); got != kept {
		t.Fatalf("an interruption that says what is left was replaced: %v", got)
	}
	other := errors.New("boom")
	if got := interruptedAfterPacking(other, "/out/a.tar.gz", "x"); got != other {
		t.Fatalf("%v", got)
	}
}

func TestAHostileBuildIDFailsTheUploadAndIsWrittenNowhere(t *testing.T) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	for _, tt := range []struct{ name, id, shown string }{
		{"shell syntax", `"x; touch /tmp/PWNED #\u202e"`, `"x; touch /tmp/PWNED #\u202e"`},
		{"900 KB", `"` + strings.Repeat("9", 900<<10) + `"`, "build_id of 921600 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url, polls := apitest.Accepting(t, tt.id)
			out := filepath.Join(t.TempDir(), "github_output")
			cfg := load(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir(), "RUNTIME_API_URL": url, "RUNTIME_API_KEY": "k",
				"GITHUB_OUTPUT": out, "POLL_INTERVAL": "20ms"})
			log := progress.New(io.Discard, "quiet")
			ctx := context.Background()
			client, err := NewClient(cfg.API, log)
			if err != nil {
				t.Fatal(err)
			}
			packed, err := Pack(ctx, cfg.Pack, cfg.Output.GitHubOutput, log)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Send(ctx, client, packed, cfg.API, cfg.Send, cfg.Output.GitHubOutput, log)
			err = Advise(err)
			var ie *runtimeapi.BuildIDError
			if !errors.As(err, &ie) || exitcode.Of(err) != exitcode.Failure || !strings.Contains(err.Error(), tt.shown) || len(err.Error()) > 500 {
				t.Fatalf("err (exit %d) = %.400q", exitcode.Of(err), err)
			}
			if polls.Load() != 0 {
				t.Errorf("the ID was polled %d times", polls.Load())
			}
			outputs, _ := os.ReadFile(out)
			if strings.Contains(string(outputs), "build_id") || strings.Contains(string(outputs), "PWNED") {
				t.Errorf("GITHUB_OUTPUT holds the ID: %q", outputs)
			}
			if r, err := result.Read(packed.Archive.Path); err != nil || r.BuildID != "" {
				t.Errorf("result file %+v, %v", r, err)
			}
		})
	}
}

func TestBuildIDArgument(t *testing.T) {
	for _, tt := range []struct{ id, want string }{
		{"0123456789abcdef01234567", ""},
		{"", "cancel needs a build ID: "},
		{"  ", "cancel needs a build ID: "},
		{"x; rm -rf ~", `cancel: "x; rm -rf ~" is no build ID`},
		{strings.Repeat("a", 300), `…" is no build ID`},
	} {
		err := BuildIDArgument("cancel", tt.id)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.id, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || exitcode.Of(err) != exitcode.Usage):
			t.Errorf("%.40q: err = %v, want %q and exit 2", tt.id, err, tt.want)
		}
	}
}

func TestCancelSaysWhatBecameOfTheBuild(t *testing.T) {
	for _, tt := range []struct {
		name, url string
		want      runtimeapi.BuildStatus
		err       string
	}{
		{"cancelled", answering(t, 200, `{"build_id":"b1","status":"CANCELLED"}`), runtimeapi.Cancelled, ""},
		{"already ended", answering(t, 200, `{"build_id":"b1","status":"success"}`), runtimeapi.Success, ""},
		{"no endpoint", answering(t, 405, `{"detail":"Method Not Allowed"}`), "", " offers no cancel endpoint"},
		{"an unknown build", answering(t, 404, `{"detail":"build \"b1\" not found"}`), "", "the Runtime API does not know build b1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := load(t, map[string]string{"RUNTIME_API_URL": tt.url, "RUNTIME_API_KEY": "k"})
			log := progress.New(io.Discard, "quiet")
			client, err := NewClient(cfg.API, log)
			if err != nil {
				t.Fatal(err)
			}
			status, err := Cancel(context.Background(), client, log, "b1")
			switch {
			case tt.err == "" && (err != nil || status != tt.want):
				t.Fatalf("%q, %v; want %q", status, err, tt.want)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || exitcode.Of(err) != exitcode.Failure):
				t.Fatalf("err = %v, want %q, exit 1", err, tt.err)
			}
		})
	}
}
