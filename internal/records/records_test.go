package records

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

var t0 = time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)

func open(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestARecordIsReadBackAfterTheStoreIsReopened(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	want := Record{ID: "b1", Status: runtimeapi.Success, TargetImage: "localhost/runtime/app:1", Image: "localhost/runtime/app:1",
		Digest: "sha256:abc", Queued: t0, Started: t0.Add(time.Second), Ended: t0.Add(time.Minute), LogTail: []byte("#1 DONE\n"),
		Telemetry: []byte(`{"cached_steps":2}`)}
	if err := s.Put(want); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, Options{})
	got, ok, err := s.Get("b1")
	if err != nil || !ok {
		t.Fatalf("Get after reopening: %v, found %v", err, ok)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if _, ok, _ := s.Get("nope"); ok {
		t.Fatal("an unknown ID was found")
	}
}

func TestASecondStoreOnTheSameDirectoryIsRefusedClearly(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, Options{})
	_, err := Open(dir, Options{})
	var locked *LockedError
	if !errors.As(err, &locked) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "another serve") {
		t.Fatalf("second Open: %v, want a *LockedError naming %s", err, dir)
	}
}

func TestTheLogIsKeptToItsTailFromALineStart(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxLogTail: 20})
	if err := s.Put(Record{ID: "b", Queued: t0, LogTail: []byte("first line\nsecond line\nthird\n")}); err != nil {
		t.Fatal(err)
	}
	got, _, _ := s.Get("b")
	if string(got.LogTail) != "second line\nthird\n" {
		t.Fatalf("log tail %q, want the last whole lines within 20 bytes", got.LogTail)
	}
}

func TestRecoverEndsTheBuildsADeadServeLeftRunning(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	for _, r := range []Record{
		{ID: "queued", Status: runtimeapi.Queued, Queued: t0},
		{ID: "working", Status: runtimeapi.Working, Queued: t0, Started: t0},
		{ID: "done", Status: runtimeapi.Success, Queued: t0, Ended: t0},
	} {
		if err := s.Put(r); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Recover(t0.Add(time.Hour), runtimeapi.InternalError, "serve restarted")
	if err != nil || n != 2 {
		t.Fatalf("Recover: %d, %v; want the 2 unended builds", n, err)
	}
	for id, want := range map[string]runtimeapi.BuildStatus{"queued": runtimeapi.InternalError, "working": runtimeapi.InternalError, "done": runtimeapi.Success} {
		r, _, _ := s.Get(id)
		if r.Status != want || (want == runtimeapi.InternalError) != (r.Error == "serve restarted") {
			t.Errorf("%s: %s %q, want %s", id, r.Status, r.Error, want)
		}
	}
}

func TestPruneKeepsTheLatestWithinTheCountAndAgeAndEveryRunningBuild(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxRecords: 3, MaxAge: 10 * time.Hour})
	for i := range 6 { // ended i hours after t0; i=0 is older than MaxAge at now
		if err := s.Put(Record{ID: fmt.Sprint("e", i), Status: runtimeapi.Success, Queued: t0, Ended: t0.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(Record{ID: "running", Status: runtimeapi.Working, Queued: t0}); err != nil {
		t.Fatal(err)
	}
	// e0 ended, then ran again and ended last: its old place in the order must not count.
	if err := s.Put(Record{ID: "e0", Status: runtimeapi.Failure, Queued: t0, Ended: t0.Add(9 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(t0.Add(10*time.Hour + 30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, id := range []string{"e0", "e1", "e2", "e3", "e4", "e5", "running"} {
		if _, ok, _ := s.Get(id); ok {
			kept = append(kept, id)
		}
	}
	if n != 3 || strings.Join(kept, " ") != "e0 e4 e5 running" {
		t.Fatalf("Prune dropped %d and kept %v; want 3 dropped, the latest 3 ended and the running one kept", n, kept)
	}
	if n, _ := s.Prune(t0.Add(100 * time.Hour)); n != 3 {
		t.Fatalf("a later Prune dropped %d, want the 3 now older than MaxAge", n)
	}
	if _, ok, _ := s.Get("running"); !ok {
		t.Fatal("a running build was pruned")
	}
}
