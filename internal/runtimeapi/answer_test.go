package runtimeapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// brokenAnswer answers 200 with a Content-Length of 200 but sends only the start of the JSON,
// then drops the connection, or, when stall, holds it until the client goes.
func brokenAnswer(stall bool) fault {
	return func(w http.ResponseWriter, r *http.Request) bool {
		io.Copy(io.Discard, r.Body)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return true
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"registry_pre")
		buf.Flush()
		if stall {
			conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // bounded, should the client never go
			conn.Read(make([]byte, 1))                             // returns when the client hangs up
		}
		return true
	}
}

// An answer cut short by the connection is a dropped connection, an answer that stops coming a
// timeout: both keep their retries (docs/protocol.md), for every request.
func TestAnAnswerBrokenOffOrStalledIsRetried(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults []fault
	}{
		{"a body that breaks off", []fault{brokenAnswer(false), brokenAnswer(false)}},
		{"a body that stops coming", []fault{brokenAnswer(true)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, map[string][]fault{"/registry_prefix": tt.faults, "/image_exists": tt.faults})
			var logs bytes.Buffer
			c := patientClient(t, e.url, &logs) // 500 ms per request: a stalled body times out
			p, err := c.RegistryPrefix(context.Background())
			if err != nil || p != "registry.test/rt" {
				t.Fatalf("prefix %q, %v\n%s", p, err, logs.String())
			}
			if _, err := c.ImageExists(context.Background(), "registry.test/rt/app:1"); err != nil {
				t.Fatalf("image_exists: %v\n%s", err, logs.String())
			}
			for _, path := range []string{"/registry_prefix", "/image_exists"} {
				if got := e.faults.seen[path]; got != len(tt.faults)+1 {
					t.Errorf("%s: %d requests, want %d: the broken answers retried, then the answer", path, got, len(tt.faults)+1)
				}
			}
			if !strings.Contains(logs.String(), "reading the answer") || !strings.Contains(logs.String(), "retrying") {
				t.Errorf("the retries do not say what failed:\n%s", logs.String())
			}
		})
	}
	t.Run("an upload whose answer breaks off", func(t *testing.T) {
		e := newEnv(t, map[string][]fault{"/build": {brokenAnswer(false)}})
		id, err := e.submit(t, runtimeapi.Multipart)
		if err != nil {
			t.Fatalf("%v\n%s", err, e.logs)
		}
		if _, err := e.wait(t, id); err != nil {
			t.Fatal(err)
		}
		e.assertReceived(t, 1)
		if e.faults.seen["/build"] != 2 || len(e.faults.keys) != 1 {
			t.Errorf("%d POST /build with %d Idempotency-Keys, want 2 with 1", e.faults.seen["/build"], len(e.faults.keys))
		}
	})
}

// The retries of broken answers are bounded like any other.
func TestBrokenAnswersAreRetriedWithinTheBound(t *testing.T) {
	var faults []fault
	for i := 0; i < 10; i++ {
		faults = append(faults, brokenAnswer(false))
	}
	e := newEnv(t, map[string][]fault{"/registry_prefix": faults})
	var logs bytes.Buffer
	_, err := patientClient(t, e.url, &logs).RegistryPrefix(context.Background())
	if err == nil || !strings.Contains(err.Error(), "GET /registry_prefix: reading the answer") || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("err = %v, want the broken answer named", err)
	}
	if got := e.faults.seen["/registry_prefix"]; got != 8 {
		t.Fatalf("%d requests, want the policy's 8", got)
	}
}

// A whole answer that is not the expected JSON is the server's answer, and asking again gives
// the same: it is not retried.
func TestAWholeAnswerThatIsNotJSONIsNotRetried(t *testing.T) {
	for _, body := range []string{`{"registry_prefix":`, `<html>hello</html>`, `{"registry_prefix": 7}`} {
		t.Run(body, func(t *testing.T) {
			e := newEnv(t, map[string][]fault{"/registry_prefix": {status(200, body)}})
			var logs bytes.Buffer
			_, err := patientClient(t, e.url, &logs).RegistryPrefix(context.Background())
			if err == nil || !strings.Contains(err.Error(), "not the expected JSON") {
				t.Fatalf("err = %v", err)
			}
			if got := e.faults.seen["/registry_prefix"]; got != 1 {
				t.Fatalf("%d requests, want 1", got)
			}
		})
	}
}
