package runtimeapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"https://api.example.com/x", "https://api.example.com", true},
		{"https://api.example.com:443/x", "https://API.example.com", true},
		{"http://api.example.com:80/x", "http://api.example.com", true},
		{"http://api.example.com/x", "https://api.example.com", false},
		{"https://api.example.com:8443/x", "https://api.example.com", false},
		{"https://evil.example.com/x", "https://api.example.com", false},
		{"http://localhost:8000/x", "http://127.0.0.1:8000", false},
	} {
		a, _ := url.Parse(tt.a)
		b, _ := url.Parse(tt.b)
		if got := sameOrigin(a, b); got != tt.same {
			t.Errorf("sameOrigin(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}

// A Runtime API on https that redirects to plain http would have the answer travel, and be
// forged, in clear: the redirect is an error, whatever the port.
func TestARedirectFromHTTPSToHTTPIsRefused(t *testing.T) {
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		io.WriteString(w, `{"status":"SUCCESS","image":"evil.example/app:1"}`)
	}))
	defer plain.Close()
	var target string
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusMovedPermanently)
	}))
	defer api.Close()
	for _, to := range []string{plain.URL, strings.Replace(api.URL, "https://", "http://", 1)} {
		target = to
		c, err := New(api.URL, "k", Options{Retry: Retry{Attempts: 3}})
		if err != nil {
			t.Fatal(err)
		}
		c.http.Transport = api.Client().Transport // trusts the test server's certificate
		s, err := c.BuildStatus(context.Background(), "b1")
		var rerr *RedirectError
		if !errors.As(err, &rerr) || !rerr.OtherOrigin || !strings.Contains(err.Error(), to+"/build_status") {
			t.Fatalf("redirect to %s: status %+v, err %v: want a RedirectError naming the Location", to, s, err)
		}
		if s.Status != "" || s.Image != "" {
			t.Fatalf("redirect to %s: the other origin's answer became a result: %+v", to, s)
		}
	}
	if plainHits.Load() != 0 {
		t.Fatalf("the plain http server got %d requests", plainHits.Load())
	}
}

// Behind a proxy that is not there, the proxy is what to check, not the Runtime API's URL.
func TestAFirstContactThroughAMissingProxyNamesTheProxy(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	proxy, _ := url.Parse(closed.URL)
	closed.Close()
	proxy.User = url.UserPassword("u", "proxy-secret")
	c, err := New("https://api.example.com", "k", Options{Retry: Retry{Attempts: 3}})
	if err != nil {
		t.Fatal(err)
	}
	c.http.Transport.(*http.Transport).Proxy = http.ProxyURL(proxy) // HTTPS_PROXY is read once per process
	_, err = c.RegistryPrefix(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Reason != ConnectionRefused || ue.Host != proxy.Hostname() {
		t.Fatalf("err = %v, want an UnreachableError naming the proxy", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "nothing listens at the proxy http://u:xxxxx@"+proxy.Host+" (for https://api.example.com)") || strings.Contains(msg, "proxy-secret") {
		t.Fatalf("%q", msg)
	}
}

// cancelOnHeaders cancels a request's context once its answer's headers have arrived, as a
// Ctrl-C does while the body is still coming.
type cancelOnHeaders struct {
	next   http.RoundTripper
	cancel context.CancelFunc
}

func (c cancelOnHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	c.cancel()
	return resp, err
}

// Ctrl-C while an answer's body arrives is Ctrl-C (context.Canceled, exit 130 at the edge), not
// an answer that is not JSON.
func TestCtrlCWhileTheAnswerArrivesIsCtrlC(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "200")
		if r.URL.Query().Get("image") == "refused:1" { // an error's detail that never ends
			w.WriteHeader(http.StatusUnprocessableEntity)
		}
		io.WriteString(w, `{"exists":`)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the rest never comes
	}))
	defer srv.Close()
	for _, image := range []string{"app:1", "refused:1"} {
		c, err := New(srv.URL, "k", Options{Retry: Retry{Attempts: 3}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		c.http.Transport = cancelOnHeaders{next: c.http.Transport, cancel: cancel}
		_, err = c.ImageExists(ctx, image)
		if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "JSON") || strings.Contains(err.Error(), "422") {
			t.Fatalf("%s: err = %v, want context.Canceled", image, err)
		}
	}
}
