// Package nettest gives tests loopback addresses that stay as a test leaves them.
package nettest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Listener listens on a free port of 127.0.0.2 where the machine lets one listen there (Linux
// routes all of 127.0.0.0/8 to loopback), else of 127.0.0.1. Test servers all listen on
// 127.0.0.1, so a port of 127.0.0.2 that a test closes is not taken and answered by another
// package's server running at the same time: a refused connection stays refused.
func Listener(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	return ln
}

// Server is httptest.NewServer on Listener.
func Server(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = Listener(t)
	srv.Start()
	return srv
}

// ClosedURL is the http:// URL of a port where nothing listens any more.
func ClosedURL(t testing.TB) string {
	t.Helper()
	srv := Server(t, http.NotFoundHandler())
	srv.Close()
	return srv.URL
}
