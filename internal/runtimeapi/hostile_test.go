package runtimeapi_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/nettest"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// patientClient retries like production (8 tries) but with waits short enough for a test: a
// failure that returns after one try proves the client chose not to retry.
func patientClient(t *testing.T, url string, logs *bytes.Buffer) *runtimeapi.Client {
	t.Helper()
	c, err := runtimeapi.New(url, key, runtimeapi.Options{
		AllowInsecureHTTP: true, // the unknown host is plain http beyond loopback
		Retry:             runtimeapi.Retry{Attempts: 8, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond},
		RequestTimeout:    500 * time.Millisecond,
		Logger:            &logCapture{buf: logs},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAFirstContactThatFindsNoServerFailsAtOnce(t *testing.T) {
	const unknown = "runtime-api.invalid" // .invalid never resolves (RFC 6761)
	var dns *net.DNSError
	if _, err := net.DefaultResolver.LookupHost(context.Background(), unknown); !errors.As(err, &dns) || !dns.IsNotFound {
		t.Skipf("this machine's resolver does not answer \"no such host\" for %s (%v): the unknown-host case cannot be told from a DNS outage here", unknown, err)
	}
	for _, tt := range []struct {
		name   string
		url    string
		reason runtimeapi.UnreachableReason
		names  string
	}{
		{"a refused connection", nettest.ClosedURL(t), runtimeapi.ConnectionRefused, "connection refused"},
		{"an unknown host", "http://" + unknown + ":8000", runtimeapi.UnknownHost, `"runtime-api.invalid"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			c := patientClient(t, tt.url, &logs)
			_, err := c.RegistryPrefix(context.Background())
			var uerr *runtimeapi.UnreachableError
			if !errors.As(err, &uerr) || uerr.Reason != tt.reason {
				t.Fatalf("err = %v, want an UnreachableError (reason %d)", err, tt.reason)
			}
			if !strings.Contains(err.Error(), tt.names) || !strings.Contains(err.Error(), "GET /registry_prefix") {
				t.Errorf("%q does not say what failed", err)
			}
			if strings.Contains(logs.String(), "retrying") {
				t.Errorf("a first contact that found no server was retried:\n%s", logs.String())
			}
			// polling a build on a wrong URL ends at once too, not at BUILD_TIMEOUT
			_, err = c.WaitForBuild(context.Background(), "b1", runtimeapi.Wait{FirstPoll: time.Millisecond, Interval: time.Millisecond,
				Deadline: time.Now().Add(time.Hour)})
			if !errors.As(err, &uerr) {
				t.Fatalf("polling: err = %v, want an UnreachableError", err)
			}
		})
	}
}

func TestAFirstContactKeepsItsRetriesForWhatMayHeal(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults []fault
	}{
		{"503s", []fault{status(503, `{"detail":"starting"}`), status(503, "")}},
		{"a 429 with Retry-After", []fault{status(429, `{"detail":"busy"}`, "Retry-After", "0")}},
		{"a dropped connection", []fault{reset}},
		{"an answer that does not come in time", []fault{hang}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, map[string][]fault{"/registry_prefix": tt.faults})
			var logs bytes.Buffer
			c := patientClient(t, e.url, &logs)
			p, err := c.RegistryPrefix(context.Background())
			if err != nil || p != "registry.test/rt" {
				t.Fatalf("prefix %q, %v\n%s", p, err, logs.String())
			}
			if got := e.faults.seen["/registry_prefix"]; got != len(tt.faults)+1 {
				t.Errorf("%d requests, want %d: the faults retried, then the answer", got, len(tt.faults)+1)
			}
		})
	}
}

// hostileID is a server that accepts every upload with the given build_id.
func hostileID(t *testing.T, id string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"build_id": `+id+`}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestABuildIDThatCouldActIsRefused(t *testing.T) {
	huge := `"` + strings.Repeat("A", 900<<10) + `"`
	for _, tt := range []struct {
		name  string
		json  string // the build_id as the server writes it
		shown string // what the error must quote
	}{
		{"shell syntax and a right-to-left override", `"x; touch /tmp/PWNED #\u202e"`, `"x; touch /tmp/PWNED #\u202e"`},
		{"a line break", `"b1\nimage=evil"`, `"b1\nimage=evil"`},
		{"a GitHub output heredoc", `"EOF\u0000"`, `"EOF\x00"`},
		{"a path", `"../../etc/passwd"`, `"../../etc/passwd"`},
		{"a space", `"b 1"`, `"b 1"`},
		{"one byte too long", `"` + strings.Repeat("a", 257) + `"`, "build_id of 257 bytes"},
		{"900 KB", huge, "build_id of 921600 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id, err := fastClient(t, hostileID(t, tt.json)).SubmitBuild(context.Background(), runtimeapi.BuildRequest{Archive: archiveFile(t), TargetImage: "x/y:1"})
			var ierr *runtimeapi.BuildIDError
			if !errors.As(err, &ierr) || id != "" {
				t.Fatalf("id %.80q, err %.300v: want a BuildIDError", id, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.shown) {
				t.Errorf("%.300q does not quote %q", msg, tt.shown)
			}
			if len(msg) > 400 || strings.ContainsAny(msg, "\n\u202e\x00") {
				t.Errorf("the error (%d bytes) is not one short escaped line: %.300q", len(msg), msg)
			}
		})
	}
	for _, id := range []string{"0123456789abcdef01234567", "projects/x", "build-1.2_3:4", strings.Repeat("z", 256)} {
		want := !strings.Contains(id, "/")
		if got := runtimeapi.ValidBuildID(id); got != want {
			t.Errorf("ValidBuildID(%.40q) = %v, want %v", id, got, want)
		}
	}
	id, err := fastClient(t, hostileID(t, `"build-1.2_3:4"`)).SubmitBuild(context.Background(), runtimeapi.BuildRequest{Archive: archiveFile(t), TargetImage: "x/y:1"})
	if err != nil || id != "build-1.2_3:4" {
		t.Fatalf("a valid ID: %q, %v", id, err)
	}
}

// elsewhere is another origin answering as a Runtime API would; it counts what reaches it.
func elsewhere(t *testing.T) (string, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/registry_prefix":
			io.WriteString(w, `{"registry_prefix":"evil.example/rt"}`)
		case "/build_status":
			io.WriteString(w, `{"status":"SUCCESS","image":"evil.example/rt/app:1"}`)
		default:
			io.WriteString(w, "pwned\n")
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &hits
}

// redirecting answers every request with a redirect to the same path and query at target.
func redirecting(t *testing.T, target string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestNoAnswerFromAnotherOriginBecomesAResult(t *testing.T) {
	other, hits := elsewhere(t)
	localhost := strings.Replace(other, "127.0.0.1", "localhost", 1) // same port, another host name
	for _, tt := range []struct {
		name, target string
		call         func(*runtimeapi.Client) (any, error)
	}{
		{"GET /registry_prefix to another port", other, func(c *runtimeapi.Client) (any, error) { return c.RegistryPrefix(context.Background()) }},
		{"GET /build_status to another port", other, func(c *runtimeapi.Client) (any, error) { return c.BuildStatus(context.Background(), "b1") }},
		{"polling to another port ends at once", other, func(c *runtimeapi.Client) (any, error) {
			return c.WaitForBuild(context.Background(), "b1", runtimeapi.Wait{FirstPoll: time.Millisecond, Interval: time.Millisecond, Deadline: time.Now().Add(time.Hour)})
		}},
		{"GET /image_exists to another host name", localhost, func(c *runtimeapi.Client) (any, error) { return c.ImageExists(context.Background(), "a/b:1") }},
		{"GET /build_logs to another port", other, func(c *runtimeapi.Client) (any, error) { return c.BuildLogs(context.Background(), "b1") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hits.Store(0)
			got, err := tt.call(fastClient(t, redirecting(t, tt.target)))
			var rerr *runtimeapi.RedirectError
			if !errors.As(err, &rerr) || !rerr.OtherOrigin {
				t.Fatalf("answer %+v, err %v: want a RedirectError to another origin", got, err)
			}
			if !strings.Contains(err.Error(), tt.target+"/") {
				t.Errorf("%q does not name the Location", err)
			}
			if hits.Load() != 0 {
				t.Errorf("the other origin got %d requests", hits.Load())
			}
		})
	}
}

func TestCancel(t *testing.T) {
	for _, tt := range []struct {
		name        string
		code        int
		body        string
		want        runtimeapi.BuildStatus
		unsupported bool
		httpStatus  int
	}{
		{"a build going on is cancelled", 200, `{"build_id":"b1","status":"CANCELLED"}`, runtimeapi.Cancelled, false, 0},
		{"a build that ended keeps its status", 200, `{"build_id":"b1","status":"SUCCESS"}`, runtimeapi.Success, false, 0},
		{"serve's 404 names the build it does not know", 404, `{"detail":"build \"b1\" not found"}`, "", false, 404},
		{"a router's plain 404 is no endpoint", 404, "404 page not found\n", "", true, 0},
		{"FastAPI's 404 is no endpoint", 404, `{"detail":"Not Found"}`, "", true, 0},
		{"405 is no endpoint", 405, `{"detail":"Method Not Allowed"}`, "", true, 0},
		{"a 401 is the key's fault", 401, `{"detail":"bad key"}`, "", false, 401},
		{"an answer for another build is no answer", 200, `{"build_id":"b2","status":"CANCELLED"}`, "", false, -1},
		{"a status outside the protocol is no answer", 200, `{"build_id":"b1","status":"DONE; rm -rf"}`, "", false, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got *http.Request
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r.Clone(context.Background())
				w.WriteHeader(tt.code)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			a, err := fastClient(t, srv.URL).Cancel(context.Background(), "b1")
			if got == nil || got.Method != http.MethodPost || got.URL.Path != "/build/cancel" || got.URL.Query().Get("build_id") != "b1" || got.Header.Get("X-API-Key") != echoedKey {
				t.Fatalf("request %+v: want POST /build/cancel?build_id=b1 with the key", got)
			}
			var unsup *runtimeapi.CancelUnsupportedError
			var herr *runtimeapi.HTTPError
			switch {
			case tt.unsupported:
				if !errors.As(err, &unsup) || !strings.Contains(err.Error(), "the Runtime API at "+srv.URL+" offers no cancel endpoint") {
					t.Fatalf("err = %v, want a CancelUnsupportedError naming the URL", err)
				}
			case tt.httpStatus == -1:
				if err == nil || a != (runtimeapi.CancelAnswer{}) {
					t.Fatalf("answer %+v, err %v: want an error", a, err)
				}
			case tt.httpStatus != 0:
				if !errors.As(err, &herr) || herr.StatusCode != tt.httpStatus || errors.As(err, &unsup) {
					t.Fatalf("err = %v, want an HTTPError %d", err, tt.httpStatus)
				}
			default:
				if err != nil || a.Status != tt.want || a.BuildID != "b1" {
					t.Fatalf("answer %+v, %v", a, err)
				}
			}
		})
	}
}

func TestCancelOnAServerWithoutTheEndpoint(t *testing.T) {
	e := newEnv(t, nil) // runtimebuild's own server as it was before the endpoint
	id, err := e.submit(t, runtimeapi.Multipart)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Cancel(context.Background(), id)
	var unsup *runtimeapi.CancelUnsupportedError
	var herr *runtimeapi.HTTPError
	switch {
	case errors.As(err, &unsup): // no endpoint yet
	case err == nil: // the endpoint is there: it must have said what became of the build
		st, err := e.client.BuildStatus(context.Background(), id)
		if err != nil || !st.Status.Terminal() {
			t.Fatalf("after a cancel that succeeded the build is %q, %v", st.Status, err)
		}
	case errors.As(err, &herr):
		t.Fatalf("a build the server knows was answered %v", err)
	default:
		t.Fatal(err)
	}
}

func TestAStatusAboutAnotherBuildIsNoResult(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"build_id":"b2","status":"SUCCESS","image":"evil.example/app:1"}`)
	}))
	defer srv.Close()
	s, err := fastClient(t, srv.URL).WaitForBuild(context.Background(), "b1", runtimeapi.Wait{FirstPoll: time.Millisecond, Interval: time.Millisecond,
		Deadline: time.Now().Add(time.Hour)})
	if !errors.Is(err, runtimeapi.ErrOtherBuild) || s.Image != "" || s.Status.Succeeded() {
		t.Fatalf("status %+v, err %v: want ErrOtherBuild at once", s, err)
	}
}
