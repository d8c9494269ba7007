package buildkit

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

// solveStatuses is a failing build as BuildKit reports it: a cached step, a step that prints 30
// lines and fails, one cancelled because of it.
func solveStatuses() []*client.SolveStatus {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(1500 * time.Millisecond)
	copyStep, runStep, other := digest.FromString("copy"), digest.FromString("run"), digest.FromString("other")
	var lines []*client.VertexLog
	for i := 1; i <= 30; i++ {
		lines = append(lines, &client.VertexLog{Vertex: runStep, Data: fmt.Appendf(nil, "make line %d\n", i), Timestamp: t0})
	}
	lines = append(lines, &client.VertexLog{Vertex: runStep, Stream: 2, Data: []byte("no newline at the end"), Timestamp: t0})
	return []*client.SolveStatus{
		{Vertexes: []*client.Vertex{
			{Digest: copyStep, Name: "[base 1/2] COPY busybox /bin/busybox", Started: &t0, Completed: &t0, Cached: true},
			{Digest: runStep, Name: "[app 2/3] RUN make", Started: &t0},
			{Digest: other, Name: "[app 1/3] RUN sleep 100", Started: &t0},
		}},
		{Logs: lines},
		{Vertexes: []*client.Vertex{ // a cache import's miss, reported before the step fails
			{Digest: digest.FromString("import"), Name: "importing cache manifest from 127.0.0.1:5000/team/app:buildcache-default-main", Started: &t0, Completed: &t0, Error: "127.0.0.1:5000/team/app:buildcache-default-main: not found"},
		}},
		{Vertexes: []*client.Vertex{
			{Digest: other, Name: "[app 1/3] RUN sleep 100", Started: &t0, Completed: &t1, Error: "context canceled"},
			{Digest: runStep, Name: "[app 2/3] RUN make", Started: &t0, Completed: &t1, Error: `process "/bin/sh -c make" did not complete successfully: exit code: 2`},
		}},
	}
}

func TestPlainProgressAndTheFailingStepWithItsLastLines(t *testing.T) {
	var out strings.Builder
	tr := newTracker()
	statuses := make(chan *client.SolveStatus)
	go func() {
		for _, st := range solveStatuses() {
			statuses <- st
		}
		close(statuses)
	}()
	showProgress(statuses, &out, tr)

	for _, want := range []string{
		"#1 [base 1/2] COPY busybox /bin/busybox\n",
		"#1 CACHED\n",
		"[app 2/3] RUN make\n",
		" make line 30\n",
		"no newline at the end\n",
		"ERROR: process \"/bin/sh -c make\" did not complete successfully: exit code: 2\n",
		"CANCELED\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the progress lacks %q:\n%s", want, out.String())
		}
	}

	err := tr.failure(errors.New("rpc error: code = Unknown desc = failed to solve: process did not complete"))
	if err.Step != "[app 2/3] RUN make" || !strings.Contains(err.Cause, "exit code: 2") {
		t.Fatalf("failure names %q: %q, want the RUN make step and its exit code (not the cancelled one, not the cache import's miss)", err.Step, err.Cause)
	}
	if len(err.Lines) != 20 || err.Lines[0] != "make line 12" || err.Lines[19] != "no newline at the end" {
		t.Fatalf("failure lines %q, want the step's last 20", err.Lines)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "[app 2/3] RUN make: process") || strings.Contains(msg, "rpc error") {
		t.Fatalf("error text %q", msg)
	}
	if rep := tr.report(2 * time.Second); rep.Steps != 3 || rep.CachedSteps != 1 {
		t.Fatalf("report counts %d steps, %d cached; want 3 and 1", rep.Steps, rep.CachedSteps)
	}
}

func TestAFailureBeforeAnyStepIsBuildKitsOwnReason(t *testing.T) {
	err := newTracker().failure(errors.New("rpc error: code = Unknown desc = failed to solve with frontend dockerfile.v0: failed to create LLB definition: target stage nope could not be found"))
	if err.Step != "" || err.Error() != "failed to create LLB definition: target stage nope could not be found" {
		t.Fatalf("%q", err.Error())
	}
}

func TestTheReportSplitsThePhasesByBuildKitsVertexNames(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) *time.Time { x := t0.Add(time.Duration(s * float64(time.Second))); return &x }
	tr := newTracker()
	tr.update(&client.SolveStatus{Vertexes: []*client.Vertex{
		{Digest: "a", Name: "importing cache manifest from r/app:buildcache-default-main", Started: at(0), Completed: at(1)},
		{Digest: "b", Name: "[internal] load build definition from Dockerfile", Started: at(0), Completed: at(0.1)},
		{Digest: "c", Name: "[1/2] COPY a /a", Started: at(1), Completed: at(1), Cached: true},
		{Digest: "d", Name: "[2/2] RUN make", Started: at(1), Completed: at(5)},
		{Digest: "e", Name: "exporting to image", Started: at(5), Completed: at(7)},
		{Digest: "f", Name: "exporting cache to registry", Started: at(7), Completed: at(8)},
		{Digest: "g", Name: "[3/3] RUN never", Started: at(8)},
	}})
	rep := tr.report(10 * time.Second)
	want := Report{Build: 6 * time.Second, ExportPush: 2 * time.Second, CacheImport: time.Second, CacheExport: time.Second, Steps: 2, CachedSteps: 1}
	if rep != want {
		t.Fatalf("report %+v\nwant   %+v", rep, want)
	}
	if !tr.startedAStep() || newTracker().startedAStep() {
		t.Fatal("startedAStep does not tell a started Dockerfile step")
	}
}

func TestOnlyLoopbackRegistriesCountAsThisMachine(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "localhost": true, "localhost:5000": true, "[::1]:5000": true, "127.9.9.9": true,
		"10.0.0.5:5000": false, "192.168.1.2": false, "registry.example": false, "localhost.example.com": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
