package runtimeapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

const echoedKey = "rk-9d2b7e4c-never-shown"

func fastClient(t *testing.T, url string) *runtimeapi.Client {
	t.Helper()
	c, err := runtimeapi.New(url, echoedKey, runtimeapi.Options{
		Retry: runtimeapi.Retry{Attempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func archiveFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "ctx.tar.gz")
	if err := os.WriteFile(p, []byte("not really gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A 3xx to POST /build once made the client GET another host, which answered a build_id: exit 0
// with nothing uploaded (issue 11).
func TestAnUploadIsNeverRedirected(t *testing.T) {
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			var otherHits, posts atomic.Int32
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				otherHits.Add(1)
				io.WriteString(w, `{"build_id":"from-elsewhere"}`)
			}))
			defer other.Close()
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				posts.Add(1)
				io.Copy(io.Discard, r.Body)
				http.Redirect(w, r, other.URL+"/build", code)
			}))
			defer api.Close()
			id, err := fastClient(t, api.URL).SubmitBuild(context.Background(), runtimeapi.BuildRequest{Archive: archiveFile(t), TargetImage: "x/y:1"})
			var rerr *runtimeapi.RedirectError
			if !errors.As(err, &rerr) || id != "" {
				t.Fatalf("id %q, err %v: want a RedirectError", id, err)
			}
			if !strings.Contains(err.Error(), other.URL+"/build") || !strings.Contains(err.Error(), "POST /build") {
				t.Errorf("error %q does not name the Location", err)
			}
			if otherHits.Load() != 0 || posts.Load() != 1 {
				t.Errorf("the other host got %d requests, the API %d posts; want 0 and 1 (no retry)", otherHits.Load(), posts.Load())
			}
		})
	}
}

func TestARedirectOfAGETWithinTheHostKeepsWorking(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/build_status", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/v2/build_status?"+r.URL.RawQuery, http.StatusFound)
	})
	mux.HandleFunc("/v2/build_status", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-Key") != echoedKey {
			http.Error(w, `{"detail":"no key"}`, http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"status":"SUCCESS","image":"r/i:1"}`)
	})
	api := httptest.NewServer(mux)
	defer api.Close()
	s, err := fastClient(t, api.URL).BuildStatus(context.Background(), "b1")
	if err != nil || s.Status != "SUCCESS" {
		t.Fatalf("%+v, %v", s, err)
	}
}

// A server that echoes the key must not get it printed, or written to the result file and
// GITHUB_OUTPUT through what the client returns (issue 11).
func TestAnEchoedKeyIsRedactedFromEverythingTheServerSends(t *testing.T) {
	var status, buildID string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := r.Header.Get("X-API-Key")
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/registry_prefix":
			io.WriteString(w, `{"registry_prefix":"reg.example/`+k+`"}`)
		case "/image_exists":
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"detail":"bad key `+k+`"}`)
		case "/build":
			io.WriteString(w, `{"build_id":"`+buildID+`"}`)
		case "/build_status":
			io.WriteString(w, status)
		}
	}))
	defer api.Close()
	c := fastClient(t, api.URL)
	var shown []string
	prefix, err := c.RegistryPrefix(context.Background())
	shown = append(shown, prefix)
	if err != nil || !strings.Contains(prefix, "[REDACTED]") {
		t.Errorf("registry prefix %q, %v", prefix, err)
	}
	_, err = c.ImageExists(context.Background(), "a/b:1")
	if err == nil {
		t.Fatal("a 400 answer passed")
	}
	shown = append(shown, err.Error())
	status = `{"status":"FAILURE","error":"denied for ` + echoedKey + `","image":"i/` + echoedKey + `","message":"` + echoedKey + `"}`
	s, err := c.BuildStatus(context.Background(), "b1")
	if err != nil {
		t.Fatal(err)
	}
	shown = append(shown, string(s.Status), s.Error, s.Image, s.Message)
	buildID = "id-" + echoedKey
	id, err := c.SubmitBuild(context.Background(), runtimeapi.BuildRequest{Archive: archiveFile(t), TargetImage: "x/y:1"})
	if err == nil || id != "" {
		t.Fatalf("a build_id holding the key was accepted: %q", id)
	}
	shown = append(shown, err.Error())
	for _, s := range shown {
		if strings.Contains(s, echoedKey) {
			t.Errorf("the key is in %q", s)
		}
	}
}

func TestAKeyWithALineBreakIsRefusedAtOnce(t *testing.T) {
	for _, k := range []string{"abc\r\nX-Evil: 1", "abc\n", "a\x00b"} {
		_, err := runtimeapi.New("http://127.0.0.1:1", k, runtimeapi.Options{})
		if !errors.Is(err, runtimeapi.ErrKeyControlCharacter) || strings.Contains(err.Error(), "abc") {
			t.Errorf("key %q: err = %v", k, err)
		}
	}
}

func TestAnEchoedKeyInAMalformedAnswerIsRedacted(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		buf.WriteString("HTTP/1.1 " + r.Header.Get("X-API-Key") + " nonsense\r\n\r\n")
		buf.Flush()
		conn.Close()
	}))
	defer api.Close()
	_, err := fastClient(t, api.URL).RegistryPrefix(context.Background())
	if err == nil || strings.Contains(err.Error(), echoedKey) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "[REDACTED]") {
		t.Fatalf("err = %v: the malformed answer is no longer quoted, so this test proves nothing", err)
	}
}
