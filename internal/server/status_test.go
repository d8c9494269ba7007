package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// gated says when a build started, then waits until released and succeeds.
type gated struct{ started, release chan struct{} }

func (g gated) Build(ctx context.Context, job *server.Job, _ io.Writer) (string, error) {
	g.started <- struct{}{}
	select {
	case <-g.release:
		return job.TargetImage, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (gated) ImageExists(context.Context, string) (bool, error) { return false, nil }

func TestElapsedSecondsCountFromAcceptanceToTheEndAndSurviveARestart(t *testing.T) {
	state := t.TempDir()
	st := openStore(t, state)
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	g := gated{started: make(chan struct{}, 1), release: make(chan struct{})}
	first := start(t, server.Options{Builder: g, Store: st, Now: c.Now})
	resp, out := first.post(t, archive(t, member{Name: "Dockerfile", Body: "FROM scratch\n"}), map[string]string{"target_image": "localhost/runtime/timed:1"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /build: %d %v", resp.StatusCode, out)
	}
	id := out["build_id"]
	select {
	case <-g.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the build did not start within 10s")
	}
	c.add(90 * time.Second)
	if got := first.status(t, id); got.Status != runtimeapi.Working || got.ElapsedSeconds != 90 {
		t.Fatalf("a build accepted 90s ago, running: %+v, want WORKING with elapsed_seconds 90", got)
	}

	c.add(30 * time.Second)
	close(g.release)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ended, err := first.client.WaitForBuild(ctx, id, runtimeapi.Wait{FirstPoll: 10 * time.Millisecond, Interval: 50 * time.Millisecond})
	if err != nil || ended.Status != runtimeapi.Success || ended.ElapsedSeconds != 120 {
		t.Fatalf("the build that ended 120s after it was accepted: %+v %v, want SUCCESS with elapsed_seconds 120", ended, err)
	}
	c.add(time.Hour)
	if got := first.status(t, id); got.ElapsedSeconds != 120 {
		t.Fatalf("an hour after the build ended: elapsed_seconds %v, want its total time 120", got.ElapsedSeconds)
	}
	first.srv.Close()
	st.Close()

	second := start(t, server.Options{Builder: server.CheckBuilder{}, Store: openStore(t, state), Now: c.Now})
	if got := second.status(t, id); got.Status != runtimeapi.Success || got.ElapsedSeconds != 120 {
		t.Fatalf("the build after a restart: %+v, want SUCCESS with elapsed_seconds 120 from its record", got)
	}
}

func TestACheckedOnlySuccessSaysSoInItsOwnFieldAlsoAfterARestart(t *testing.T) {
	state := t.TempDir()
	st := openStore(t, state)
	ctx := archive(t, member{Name: "Dockerfile", Body: "FROM scratch\n"})
	first := start(t, server.Options{Builder: server.CheckBuilder{Name: "SERVE_BUILDER=check"}, Store: st})
	id, got, err := first.buildID(t, ctx, "localhost/runtime/checked:1")
	const note = "checked only: SERVE_BUILDER=check builds nothing" // what older clients read
	if err != nil || got.Status != runtimeapi.Success || !got.CheckedOnly || got.Message != note {
		t.Fatalf("a SUCCESS of the check builder: %+v %v, want checked_only and the message %q", got, err, note)
	}
	bad, failed, _ := first.buildID(t, archive(t, member{Name: "Dockerfile", Body: "FROM scratch\nCOPY missing /\n"}), "localhost/runtime/checked:2")
	if failed.Status != runtimeapi.Failure || failed.CheckedOnly || failed.Message != "" {
		t.Fatalf("a FAILURE of the check builder: %+v, want no checked_only and no message", failed)
	}
	first.srv.Close()
	st.Close()

	// Restarted with a builder that builds: the earlier build still says what it was.
	second := start(t, server.Options{Builder: &scripted{}, Store: openStore(t, state)})
	if got := second.status(t, id); got.Status != runtimeapi.Success || !got.CheckedOnly || got.Message != note {
		t.Fatalf("the checked-only build after a restart: %+v, want checked_only and its message", got)
	}
	if got := second.status(t, bad); got.CheckedOnly {
		t.Fatalf("the failed check after a restart: %+v, want no checked_only", got)
	}
	_, built, err := second.buildID(t, ctx, "localhost/runtime/checked:3")
	if err != nil || built.Status != runtimeapi.Success || built.CheckedOnly || strings.Contains(built.Message, "checked only") {
		t.Fatalf("a SUCCESS of a builder that builds: %+v %v, want no checked_only", built, err)
	}
}
