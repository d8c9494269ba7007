// Package apitest is a Runtime API for tests that answers the way a test needs it to: as a
// real one would, up to what the test makes it say.
package apitest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Accepting answers /registry_prefix (registry.test/rt) and /image_exists (false) as a Runtime
// API would, accepts every upload with buildID (raw JSON, so that a test can send any value),
// and answers every other request with a successful build of registry.test/rt/app:1, counting
// them. It is closed when the test ends.
func Accepting(t testing.TB, buildID string) (url string, polls *atomic.Int32) {
	polls = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/registry_prefix":
			io.WriteString(w, `{"registry_prefix":"registry.test/rt"}`)
		case "/image_exists":
			io.WriteString(w, `{"exists":false}`)
		case "/build":
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"build_id":`+buildID+`}`)
		default:
			polls.Add(1)
			io.WriteString(w, `{"status":"SUCCESS","image":"registry.test/rt/app:1"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, polls
}
