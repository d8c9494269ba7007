package runtimeapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
	"github.com/runtimebuild/runtimebuild/internal/nettest"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

const key = "sk-test-7f3a9c1e-do-not-print"

// recorder is a server.Builder that keeps the sha256 of every archive it is asked to build.
type recorder struct {
	mu     sync.Mutex
	sums   []string
	tags   [][]string
	images []string
	fail   error
}

func (r *recorder) Build(ctx context.Context, job *server.Job, log io.Writer) (string, error) {
	f, err := os.Open(job.Archive)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	r.mu.Lock()
	r.sums = append(r.sums, hex.EncodeToString(h.Sum(nil)))
	r.tags = append(r.tags, job.Tags)
	r.images = append(r.images, job.TargetImage)
	r.mu.Unlock()
	fmt.Fprintln(log, "built", job.TargetImage)
	if r.fail != nil {
		return "", r.fail
	}
	return "registry.test/" + job.TargetImage, nil
}

func (r *recorder) ImageExists(ctx context.Context, image string) (bool, error) {
	return image == "registry.test/rt/exists:1", nil
}

func (r *recorder) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.sums...)
}

// fault answers one request instead of the server; it returns false to let it through.
type fault func(w http.ResponseWriter, r *http.Request) bool

// faulty serves the real server behind a list of faults per path, used in order.
type faulty struct {
	mu     sync.Mutex
	faults map[string][]fault
	next   http.Handler
	seen   map[string]int
	keys   map[string]bool // Idempotency-Key values of POST /build
}

func (f *faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen[r.URL.Path]++
	if r.URL.Path == "/build" {
		f.keys[r.Header.Get("Idempotency-Key")] = true
	}
	var ft fault
	if q := f.faults[r.URL.Path]; len(q) > 0 {
		ft, f.faults[r.URL.Path] = q[0], q[1:]
	}
	f.mu.Unlock()
	if ft != nil && ft(w, r) {
		return
	}
	f.next.ServeHTTP(w, r)
}

func status(code int, body string, header ...string) fault {
	return func(w http.ResponseWriter, r *http.Request) bool {
		io.Copy(io.Discard, r.Body)
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		io.WriteString(w, body)
		return true
	}
}

// reset reads part of the upload and drops the connection.
func reset(w http.ResponseWriter, r *http.Request) bool {
	io.CopyN(io.Discard, r.Body, 1024)
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
	return true
}

// hang answers only when the client gives up.
func hang(w http.ResponseWriter, r *http.Request) bool {
	io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
	return true
}

func statusIs(s string) fault {
	return status(200, fmt.Sprintf(`{"status":%q}`, s))
}

type env struct {
	srv     *server.Server
	builder *recorder
	faults  *faulty
	url     string
	logs    *bytes.Buffer
	client  *runtimeapi.Client
	archive string
	sum     string
}

type logCapture struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (l *logCapture) Infof(f string, a ...any) {
	l.mu.Lock()
	fmt.Fprintf(l.buf, f+"\n", a...)
	l.mu.Unlock()
}
func (l *logCapture) Warnf(f string, a ...any) {
	l.mu.Lock()
	fmt.Fprintf(l.buf, "warning: "+f+"\n", a...)
	l.mu.Unlock()
}

func newEnv(t *testing.T, faults map[string][]fault) *env {
	t.Helper()
	b := &recorder{}
	srv, err := server.New(server.Options{Key: key, Builder: b, WorkDir: filepath.Join(t.TempDir(), "work"), RegistryPrefix: "registry.test/rt"})
	if err != nil {
		t.Fatal(err)
	}
	f := &faulty{faults: faults, next: srv.Handler(), seen: map[string]int{}, keys: map[string]bool{}}
	if f.faults == nil {
		f.faults = map[string][]fault{}
	}
	hs := httptest.NewServer(f)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	e := &env{srv: srv, builder: b, faults: f, url: hs.URL, logs: &bytes.Buffer{}}
	e.client = e.newClient(t, key)
	e.archive, e.sum = makeArchive(t, 256<<10)
	return e
}

func (e *env) newClient(t *testing.T, k string) *runtimeapi.Client {
	// The server answers an upload once it is on disk: give it time on a loaded machine, or a
	// retry would upload (and build) it twice.
	return e.clientWaiting(t, k, 30*time.Second)
}

// clientWaiting is a client that waits headerTimeout for the answer to an upload.
func (e *env) clientWaiting(t *testing.T, k string, headerTimeout time.Duration) *runtimeapi.Client {
	c, err := runtimeapi.New(e.url, k, runtimeapi.Options{
		Retry:          runtimeapi.Retry{Attempts: 5, BaseDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond},
		RequestTimeout: 2 * time.Second, HeaderTimeout: headerTimeout,
		Logger: &logCapture{buf: e.logs},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// makeArchive packs a build context of about size random bytes and returns its path and sha256.
func makeArchive(t *testing.T, size int) (string, string) {
	t.Helper()
	dir := t.TempDir()
	blob := make([]byte, size)
	rand.Read(blob)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY blob /\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "blob"), blob, 0o644)
	entries, _, err := buildctx.Scan(dir, []string{"Dockerfile", "blob"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := buildctx.Write(context.Background(), t.TempDir(), "ctx.tar.gz", entries, time.Unix(0, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	return a.Path, a.SHA256
}

func (e *env) submit(t *testing.T, format runtimeapi.Format) (string, error) {
	return e.client.SubmitBuild(context.Background(), runtimeapi.BuildRequest{
		Archive: e.archive, Format: format, TargetImage: "registry.test/rt/app:abc1234-python", Tags: []string{"registry.test/rt/app:latest"},
	})
}

func (e *env) wait(t *testing.T, id string) (runtimeapi.Status, error) {
	return e.client.WaitForBuild(context.Background(), id, runtimeapi.Wait{
		FirstPoll: time.Millisecond, Interval: 20 * time.Millisecond, Deadline: time.Now().Add(5 * time.Second), ResumeAdvice: "resume with: mage status " + id,
	})
}

// assertReceivedOnce checks that the server built exactly the archive's bytes, n times.
func (e *env) assertReceived(t *testing.T, n int) {
	t.Helper()
	got := e.builder.received()
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		got = e.builder.received()
	}
	if len(got) != n {
		t.Fatalf("the server built %d archives, want %d", len(got), n)
	}
	for _, s := range got {
		if s != e.sum {
			t.Fatalf("the server received sha256 %s, want %s", s, e.sum)
		}
	}
}

func TestEveryUploadFormatArrivesByteForByte(t *testing.T) {
	for _, format := range []runtimeapi.Format{runtimeapi.Multipart, runtimeapi.JSON} {
		t.Run(string(format), func(t *testing.T) {
			e := newEnv(t, nil)
			id, err := e.submit(t, format)
			if err != nil {
				t.Fatal(err)
			}
			s, err := e.wait(t, id)
			if err != nil {
				t.Fatal(err)
			}
			if s.Status != "SUCCESS" || s.Image != "registry.test/registry.test/rt/app:abc1234-python" {
				t.Fatalf("status %+v", s)
			}
			e.assertReceived(t, 1)
			if tags := e.builder.tags[0]; len(tags) != 1 || tags[0] != "registry.test/rt/app:latest" {
				t.Fatalf("tags %q", tags)
			}
		})
	}
}

func TestFaultsAreRetriedAndTheBuildAcceptedOnce(t *testing.T) {
	tests := []struct {
		name   string
		faults []fault
		log    string
	}{
		{"429 with Retry-After in seconds", []fault{status(429, `{"detail":"slow down"}`, "Retry-After", "1")}, "429 Too Many Requests: slow down"},
		{"429 with Retry-After as a date", []fault{status(429, `{"detail":"later"}`, "Retry-After", time.Now().Add(time.Second).UTC().Format(http.TimeFormat))}, "429"},
		{"a burst of 503", []fault{status(503, "<html>busy</html>"), status(503, ""), status(502, ""), status(504, "")}, "503 Service Unavailable: <html>busy</html>"},
		{"a connection reset during the upload", []fault{reset}, "POST /build"},
		{"an answer slower than the client waits", []fault{hang}, "timeout awaiting response headers"},
		{"a 500 then a 408", []fault{status(500, `{"detail":"oops"}`), status(408, "")}, "500 Internal Server Error: oops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, map[string][]fault{"/build": tt.faults})
			if strings.Contains(tt.name, "slower than the client waits") {
				e.client = e.clientWaiting(t, key, time.Second) // gives up on the hanging answer, not on the server's
			}
			start := time.Now()
			id, err := e.submit(t, runtimeapi.Multipart)
			if err != nil {
				t.Fatalf("%v\nlogs:\n%s", err, e.logs)
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("retries took %s: the waits are not capped", time.Since(start))
			}
			if _, err := e.wait(t, id); err != nil {
				t.Fatal(err)
			}
			e.assertReceived(t, 1)
			if e.faults.seen["/build"] != len(tt.faults)+1 {
				t.Errorf("%d POST /build, want %d", e.faults.seen["/build"], len(tt.faults)+1)
			}
			if len(e.faults.keys) != 1 {
				t.Errorf("%d distinct Idempotency-Keys across the attempts, want 1", len(e.faults.keys))
			}
			if !strings.Contains(e.logs.String(), tt.log) || !strings.Contains(e.logs.String(), "retrying") {
				t.Errorf("logs lack %q:\n%s", tt.log, e.logs)
			}
		})
	}
}

func TestPermanentAnswersAreNotRetried(t *testing.T) {
	tests := []struct {
		name string
		ft   fault
		want string
	}{
		{"401 shows the detail", status(401, `{"detail":"bad key"}`), "401 Unauthorized: bad key"},
		{"403 shows the detail", status(403, `{"detail":"forbidden"}`), "403 Forbidden: forbidden"},
		{"413 shows the detail", status(413, `{"detail":"max 1 GB"}`), "413 Request Entity Too Large: max 1 GB"},
		{"422 shows a structured detail", status(422, `{"detail":[{"loc":["body","target_image"],"msg":"field required"}]}`), "field required"},
		{"400", status(400, `{"detail":"no"}`), "400 Bad Request: no"},
		{"404", status(404, `not here`), "404 Not Found: not here"},
		{"a 2xx without build_id", status(202, `{"id":"x"}`), "returned no build_id"},
		{"malformed JSON", status(202, `{"build_id":`), "not the expected JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, map[string][]fault{"/build": {tt.ft}})
			_, err := e.submit(t, runtimeapi.Multipart)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if e.faults.seen["/build"] != 1 {
				t.Fatalf("%d attempts, want 1", e.faults.seen["/build"])
			}
			e.assertReceived(t, 0)
		})
	}
}

func TestRetriesAreBounded(t *testing.T) {
	var faults []fault
	for i := 0; i < 10; i++ {
		faults = append(faults, status(503, `{"detail":"down"}`))
	}
	e := newEnv(t, map[string][]fault{"/build": faults})
	_, err := e.submit(t, runtimeapi.Multipart)
	if err == nil || !strings.Contains(err.Error(), "503") || e.faults.seen["/build"] != 5 {
		t.Fatalf("err = %v after %d attempts, want a 503 after 5", err, e.faults.seen["/build"])
	}
}

func TestWaitForBuild(t *testing.T) {
	tests := []struct {
		name       string
		statuses   []fault
		fail       error
		wantStatus runtimeapi.BuildStatus
		wantErr    string
	}{
		{"unknown and missing statuses are still going", []fault{statusIs("PENDING"), statusIs("BAKING"), status(200, `{}`), statusIs("QUEUED"), statusIs("WORKING"), statusIs("RUNNING"), statusIs("IN_PROGRESS"), statusIs("STATUS_UNKNOWN")}, nil, "SUCCESS", ""},
		{"failing polls are retried", []fault{status(503, ""), status(200, "not json"), reset}, nil, "SUCCESS", ""},
		{"a failed build gives the server's error and the ID", nil, errors.New("COPY failed: file not found: blob2"), "FAILURE", "ended FAILURE: COPY failed: file not found: blob2"},
		{"INTERNAL_ERROR", []fault{status(200, `{"status":"INTERNAL_ERROR","error":"worker lost"}`)}, nil, "INTERNAL_ERROR", "ended INTERNAL_ERROR: worker lost"},
		{"TIMEOUT", []fault{status(200, `{"status":"TIMEOUT","error":"took too long"}`)}, nil, "TIMEOUT", "ended TIMEOUT: took too long"},
		{"CANCELLED", []fault{status(200, `{"status":"CANCELLED"}`)}, nil, "CANCELLED", "was cancelled: the server gave no reason"},
		{"EXPIRED", []fault{status(200, `{"status":"EXPIRED","error":"queued past its TTL"}`)}, nil, "EXPIRED", "ended EXPIRED: queued past its TTL"},
		{"a 401 while polling stops at once", []fault{status(401, `{"detail":"revoked"}`)}, nil, "", "401 Unauthorized: revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, map[string][]fault{"/build_status": tt.statuses})
			e.builder.fail = tt.fail
			id, err := e.submit(t, runtimeapi.Multipart)
			if err != nil {
				t.Fatal(err)
			}
			s, err := e.wait(t, id)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("%v\n%s", err, e.logs)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), id)) {
				t.Fatalf("err = %v, want %q with the build ID", err, tt.wantErr)
			}
			if s.Status != tt.wantStatus {
				t.Fatalf("status %q, want %q", s.Status, tt.wantStatus)
			}
		})
	}
}

func TestWaitForBuildGivesUpAtTheDeadlineWithTheResumeCommand(t *testing.T) {
	var going []fault
	for i := 0; i < 1000; i++ {
		going = append(going, statusIs("WORKING"))
	}
	e := newEnv(t, map[string][]fault{"/build_status": going})
	id, err := e.submit(t, runtimeapi.Multipart)
	if err != nil {
		t.Fatal(err)
	}
	clock := newClock()
	_, err = e.client.WaitForBuild(context.Background(), id, runtimeapi.Wait{
		FirstPoll: time.Millisecond, Interval: 10 * time.Millisecond, Deadline: clock.Now().Add(200 * time.Millisecond),
		ResumeAdvice: "resume with: mage status " + id, Clock: clock,
	})
	if !errors.Is(err, runtimeapi.ErrBuildTimeout) || !strings.Contains(err.Error(), "still WORKING") || !strings.Contains(err.Error(), "mage status "+id) {
		t.Fatalf("err = %v", err)
	}
	if n := strings.Count(e.logs.String(), "WORKING"); n != 1 {
		t.Errorf("the WORKING status was logged %d times, want once:\n%s", n, e.logs)
	}
}

func TestRegistryPrefixAndImageExists(t *testing.T) {
	e := newEnv(t, map[string][]fault{"/registry_prefix": {status(503, "")}})
	p, err := e.client.RegistryPrefix(context.Background())
	if err != nil || p != "registry.test/rt" {
		t.Fatalf("prefix %q, %v", p, err)
	}
	for image, want := range map[string]bool{"registry.test/rt/exists:1": true, "registry.test/rt/new:2": false} {
		if got, err := e.client.ImageExists(context.Background(), image); err != nil || got != want {
			t.Fatalf("ImageExists(%s) = %v, %v", image, got, err)
		}
	}
	f := newEnv(t, map[string][]fault{"/registry_prefix": {status(200, `{"prefix":"x"}`)}})
	if _, err := f.client.RegistryPrefix(context.Background()); err == nil || !strings.Contains(err.Error(), "without registry_prefix") {
		t.Fatalf("err = %v", err)
	}
}

func TestTheKeyIsNeverPrinted(t *testing.T) {
	var all bytes.Buffer
	check := func(what string, err error) {
		if err != nil {
			all.WriteString(what + ": " + err.Error() + "\n")
		}
	}
	for _, ft := range []fault{status(401, `{"detail":"bad"}`), status(500, ""), reset, hang, status(202, "{}")} {
		e := newEnv(t, map[string][]fault{"/build": {ft, ft, ft, ft, ft}, "/build_status": {ft, ft, ft, ft, ft}, "/registry_prefix": {ft, ft, ft, ft, ft}})
		e.client = e.clientWaiting(t, key, 300*time.Millisecond) // the hanging answers end soon
		_, err := e.submit(t, runtimeapi.Multipart)
		check("submit", err)
		_, err = e.client.RegistryPrefix(context.Background())
		check("prefix", err)
		_, err = e.client.WaitForBuild(context.Background(), "nope", runtimeapi.Wait{Interval: time.Millisecond, Deadline: time.Now().Add(100 * time.Millisecond)})
		check("wait", err)
		all.Write(e.logs.Bytes())
	}
	_, err := runtimeapi.New("http://"+key+"@example.com", key, runtimeapi.Options{})
	check("new", err)
	if all.Len() == 0 || strings.Contains(all.String(), key) {
		t.Fatalf("output (%d bytes) holds the key:\n%s", all.Len(), all.String())
	}
}

func TestPlainHTTPIsOnlyForLoopback(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000", "https://api.example.com"} {
		if _, err := runtimeapi.New(u, key, runtimeapi.Options{}); err != nil {
			t.Errorf("New(%s): %v", u, err)
		}
	}
	var ue *runtimeapi.URLError
	if _, err := runtimeapi.New("http://api.example.com", key, runtimeapi.Options{}); !errors.As(err, &ue) || ue.Reason != runtimeapi.InsecureHTTP || ue.URL != "http://api.example.com" {
		t.Errorf("plain http to another host: err = %v", err)
	}
	if _, err := runtimeapi.New("http://api.example.com", key, runtimeapi.Options{AllowInsecureHTTP: true}); err != nil {
		t.Errorf("with ALLOW_INSECURE_HTTP: %v", err)
	}
}

func TestNewRefusesABaseURLItCannotUseWithoutShowingItsUser(t *testing.T) {
	for _, tt := range []struct {
		url    string
		reason runtimeapi.URLReason
		shown  string
	}{
		{"ftp://api.example.com", runtimeapi.NotHTTP, "ftp://api.example.com"},
		{"https://", runtimeapi.NotHTTP, "https:"},
		{"ftp://" + key + "@api.example.com", runtimeapi.NotHTTP, "ftp://api.example.com"},
		{"https://" + key + ":pw@api.example.com", runtimeapi.HasCredentials, "https://api.example.com"},
		{"http://api.example.com/", runtimeapi.InsecureHTTP, "http://api.example.com"},
	} {
		_, err := runtimeapi.New(tt.url, key, runtimeapi.Options{})
		var ue *runtimeapi.URLError
		if !errors.As(err, &ue) || ue.Reason != tt.reason || ue.URL != tt.shown {
			t.Errorf("New(%q): err = %#v, want reason %d showing %q", tt.url, err, tt.reason, tt.shown)
			continue
		}
		if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "RUNTIME_API") {
			t.Errorf("New(%q): %q names the key or a setting", tt.url, err)
		}
	}
}

func TestABuildEndingJustBeforeTheDeadlineIsSeen(t *testing.T) {
	// The first poll says WORKING; the build is done by the next one. The wait between them
	// (10 s) is longer than the time left, so only a last poll before the deadline sees SUCCESS.
	e := newEnv(t, map[string][]fault{"/build_status": {statusIs("WORKING"), statusIs("SUCCESS")}})
	id, err := e.submit(t, runtimeapi.Multipart)
	if err != nil {
		t.Fatal(err)
	}
	clock := newClock()
	deadline := clock.Now().Add(400 * time.Millisecond)
	s, err := e.client.WaitForBuild(context.Background(), id, runtimeapi.Wait{
		FirstPoll: 10 * time.Second, Interval: 10 * time.Second, Deadline: deadline, Clock: clock,
	})
	if err != nil || s.Status != "SUCCESS" {
		t.Fatalf("status %+v, err %v: the build ended well before the deadline but was not seen", s, err)
	}
	if clock.Now().After(deadline) {
		t.Fatalf("the last poll came after the deadline")
	}
}

// fakeClock is a time that moves only when WaitForBuild waits: each wait passes at once and
// advances the clock by its length.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *fakeClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

func TestAFailedPollIsJustTheNextPoll(t *testing.T) {
	// Three polls meet a 503: each is one request, followed by the next poll after the same
	// backoff as any poll (1 s, 2 s, 4 s), never by a retry loop of its own.
	e := newEnv(t, map[string][]fault{"/build_status": {
		status(503, `{"detail":"busy"}`), status(503, `{"detail":"busy"}`), status(502, ""), statusIs("WORKING"), statusIs("SUCCESS"),
	}})
	id, err := e.submit(t, runtimeapi.Multipart)
	if err != nil {
		t.Fatal(err)
	}
	clock := newClock()
	s, err := e.client.WaitForBuild(context.Background(), id, runtimeapi.Wait{
		Interval: 10 * time.Second, Deadline: clock.Now().Add(time.Hour), Clock: clock,
	})
	if err != nil || s.Status != runtimeapi.Success {
		t.Fatalf("status %+v, err %v\n%s", s, err, e.logs)
	}
	if got := e.faults.seen["/build_status"]; got != 5 {
		t.Errorf("%d requests to /build_status, want 5 (one per poll)", got)
	}
	if got, want := fmt.Sprint(clock.Waits()), "[1s 2s 4s 8s]"; got != want {
		t.Errorf("waits between polls %s, want %s", got, want)
	}
	if strings.Contains(e.logs.String(), "retrying") {
		t.Errorf("a poll was retried by the request retrier:\n%s", e.logs)
	}
	if n := strings.Count(e.logs.String(), "polling build"); n != 2 {
		t.Errorf("%d warnings for 3 failed polls with 2 distinct errors, want 2:\n%s", n, e.logs)
	}
}

func TestPollingStopsAtTheDeadlineWhateverTheServerSays(t *testing.T) {
	var down []fault
	for i := 0; i < 100; i++ {
		down = append(down, status(503, ""))
	}
	e := newEnv(t, map[string][]fault{"/build_status": down})
	clock := newClock()
	deadline := clock.Now().Add(time.Minute)
	_, err := e.client.WaitForBuild(context.Background(), "b1", runtimeapi.Wait{Interval: 10 * time.Second, Deadline: deadline, Clock: clock})
	if !errors.Is(err, runtimeapi.ErrBuildTimeout) {
		t.Fatalf("err = %v, want BUILD_TIMEOUT", err)
	}
	if clock.Now().After(deadline) {
		t.Fatalf("gave up at %s, after the deadline %s", clock.Now(), deadline)
	}
	if n := e.faults.seen["/build_status"]; n < 6 || n > 12 {
		t.Fatalf("%d polls in a minute of 10 s polls, want about 8", n)
	}
}

func TestTheLogIsFollowedWhileTheBuildRuns(t *testing.T) {
	e := newEnv(t, nil)
	id, err := e.submit(t, runtimeapi.Multipart)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	_, err = e.client.WaitForBuild(context.Background(), id, runtimeapi.Wait{
		FirstPoll: time.Millisecond, Interval: 20 * time.Millisecond, Deadline: time.Now().Add(10 * time.Second),
		OnLog: func(l string) { lines = append(lines, l) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "built registry.test/rt/app:abc1234-python"; !slices.Contains(lines, want) {
		t.Fatalf("log lines %q lack %q", lines, want)
	}
	if n := strings.Count(strings.Join(lines, "\n"), "built registry.test"); n != 1 {
		t.Fatalf("a log line was handed on twice: %q", lines)
	}
}

func TestAMissingLogEndpointIsNeitherRetriedNorReported(t *testing.T) {
	for _, path := range []string{"/build_logs"} {
		e := newEnv(t, map[string][]fault{path: {status(404, `{"detail":"Not Found"}`)}, "/build_status": {statusIs("WORKING"), statusIs("WORKING")}})
		e.builder.fail = errors.New("RUN make: exit 2")
		id, err := e.submit(t, runtimeapi.Multipart)
		if err != nil {
			t.Fatal(err)
		}
		called := 0
		_, err = e.client.WaitForBuild(context.Background(), id, runtimeapi.Wait{
			FirstPoll: time.Millisecond, Interval: 20 * time.Millisecond, Deadline: time.Now().Add(10 * time.Second),
			OnLog: func(string) { called++ },
		})
		var failed *runtimeapi.BuildFailedError
		if !errors.As(err, &failed) || len(failed.LogTail) != 0 {
			t.Fatalf("err = %#v, want a failed build without log lines", err)
		}
		if n := e.faults.seen[path]; n != 1 || called != 0 {
			t.Fatalf("%d requests to %s and %d lines after a 404, want 1 and 0", n, path, called)
		}
		if strings.Contains(e.logs.String(), "build_logs") {
			t.Fatalf("the missing endpoint was reported:\n%s", e.logs)
		}
	}
}

func TestAFailedBuildCarriesTheEndOfItsLog(t *testing.T) {
	var log strings.Builder
	for i := 1; i <= 45; i++ {
		fmt.Fprintf(&log, "step %d\n", i)
	}
	log.WriteString("error: exit 2") // no final newline
	e := newEnv(t, map[string][]fault{
		"/build_status": {status(200, `{"status":"FAILURE","error":"RUN make: exit 2"}`)},
		"/build_logs":   {status(200, log.String())},
	})
	var lines []string
	_, err := e.client.WaitForBuild(context.Background(), "b1", runtimeapi.Wait{
		FirstPoll: time.Millisecond, Interval: time.Millisecond, Deadline: time.Now().Add(10 * time.Second),
		OnLog: func(l string) { lines = append(lines, l) },
	})
	var failed *runtimeapi.BuildFailedError
	if !errors.As(err, &failed) {
		t.Fatalf("err = %v", err)
	}
	if len(failed.LogTail) != runtimeapi.LogTailLines || failed.LogTail[0] != "step 17" || failed.LogTail[29] != "error: exit 2" {
		t.Fatalf("log tail %q, want steps 17 to 45 and the last line", failed.LogTail)
	}
	if len(lines) != 31 || lines[0] != "(16 earlier log lines not shown)" {
		t.Fatalf("lines handed on: %q", lines)
	}
}

func TestGivingUpAtTheDeadlineSaysWhyTheTriesFailed(t *testing.T) {
	gone := nettest.Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"registry_prefix":"registry.test/rt"}`)
	}))
	c, err := runtimeapi.New(gone.URL, key, runtimeapi.Options{Retry: runtimeapi.Retry{Attempts: 100, BaseDelay: 20 * time.Millisecond, MaxDelay: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegistryPrefix(context.Background()); err != nil { // the server answered once: it may come back
		t.Fatal(err)
	}
	// nothing listens there now: every try is refused
	gone.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second) // room for the first try on a loaded machine
	defer cancel()
	_, err = c.RegistryPrefix(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v, want the deadline and the refused connection that the tries met", err)
	}
}

func TestServeAnswersTheLogInBothForms(t *testing.T) {
	e := newEnv(t, nil)
	id, err := e.submit(t, runtimeapi.Multipart)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.wait(t, id); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/build_logs?build_id=" + id, "/build_logs/" + id} {
		req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "built registry.test/rt/app:abc1234-python") {
			t.Fatalf("GET %s: %d %q", path, resp.StatusCode, body)
		}
	}
}
