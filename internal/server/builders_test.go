package server

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

type answered struct{ hosts []string }

func (a *answered) RoundTrip(r *http.Request) (*http.Response, error) {
	a.hosts = append(a.hosts, r.URL.Scheme+"://"+r.URL.Host)
	return nil, errors.New("stub: no network")
}

func TestPlainHTTPReachesOnlyLoopbackRegistries(t *testing.T) {
	next := &answered{}
	rt := loopbackHTTPOnly{next}
	for _, u := range []string{"http://10.1.2.3:5000/v2/", "http://192.168.0.9/v2/", "http://registry.example/v2/"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := rt.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "refusing plain HTTP") {
			t.Errorf("%s: %v, want refused before any connection", u, err)
		}
	}
	for _, u := range []string{"http://127.0.0.1:5000/v2/", "http://localhost:5000/v2/", "http://[::1]:5000/v2/", "https://10.1.2.3/v2/", "https://registry.example/v2/"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		rt.RoundTrip(req)
	}
	if len(next.hosts) != 5 || next.hosts[0] != "http://127.0.0.1:5000" || next.hosts[3] != "https://10.1.2.3" {
		t.Fatalf("passed on: %v, want the loopback and the TLS requests only", next.hosts)
	}
}

type redirecting struct{ location string }

func (r redirecting) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusMovedPermanently, Header: http.Header{"Location": {r.location}}, Body: http.NoBody}, nil
}

// Issue 17, D: a registry that redirects /v2/team/../other/… to /v2/other/… is never followed
// to another repository; a blob's redirect to its storage is.
func TestTheRegistryClientFollowsNoRedirectToAnotherRepository(t *testing.T) {
	for loc, refused := range map[string]bool{
		"/v2/other/app/manifests/1":                     true,
		"http://127.0.0.1:5000/v2/other/blobs/uploads/": true,
		"/v2/team/app/manifests/1":                      false,
		"https://storage.example/blob/sha256:abc":       false,
	} {
		req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1:5000/v2/team/app/manifests/1", nil)
		resp, err := loopbackHTTPOnly{redirecting{loc}}.RoundTrip(req)
		if refused != (err != nil) || (refused && !strings.Contains(err.Error(), "refusing the registry's redirect")) {
			t.Errorf("redirect to %s: %v %v, want refused %v", loc, resp, err, refused)
		}
	}
}
