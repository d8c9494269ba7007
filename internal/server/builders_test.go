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
