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

func TestPlainProgressAndTheFailingStepWithItsLastLines(t *testing.T) {
	var out strings.Builder
	p := newPrinter(&out)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(1500 * time.Millisecond)
	copyStep, runStep, other := digest.FromString("copy"), digest.FromString("run"), digest.FromString("other")

	p.update(&client.SolveStatus{Vertexes: []*client.Vertex{
		{Digest: copyStep, Name: "[base 1/2] COPY busybox /bin/busybox", Started: &t0, Completed: &t0, Cached: true},
		{Digest: runStep, Name: "[app 2/3] RUN make", Started: &t0},
		{Digest: other, Name: "[app 1/3] RUN sleep 100", Started: &t0},
	}})
	var lines []*client.VertexLog
	for i := 1; i <= 30; i++ {
		lines = append(lines, &client.VertexLog{Vertex: runStep, Data: fmt.Appendf(nil, "make line %d\n", i)})
	}
	lines = append(lines, &client.VertexLog{Vertex: runStep, Stream: 2, Data: []byte("no newline at the end")})
	p.update(&client.SolveStatus{Logs: lines})
	p.update(&client.SolveStatus{Vertexes: []*client.Vertex{
		{Digest: other, Name: "[app 1/3] RUN sleep 100", Started: &t0, Completed: &t1, Error: "context canceled"},
		{Digest: runStep, Name: "[app 2/3] RUN make", Started: &t0, Completed: &t1, Error: `process "/bin/sh -c make" did not complete successfully: exit code: 2`},
	}})

	for _, want := range []string{
		"#1 [base 1/2] COPY busybox /bin/busybox\n",
		"#1 CACHED\n",
		"#2 [app 2/3] RUN make\n",
		"#2 make line 30\n",
		"#2 no newline at the end\n#2 ERROR: process",
		"#3 ERROR: context canceled\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the progress lacks %q:\n%s", want, out.String())
		}
	}

	err := p.failure(errors.New("rpc error: code = Unknown desc = failed to solve: process did not complete"))
	if err.Step != "[app 2/3] RUN make" || !strings.Contains(err.Cause, "exit code: 2") {
		t.Fatalf("failure names %q: %q, want the RUN make step and its exit code (not the cancelled one)", err.Step, err.Cause)
	}
	if len(err.Lines) != 20 || err.Lines[0] != "make line 12" || err.Lines[19] != "no newline at the end" {
		t.Fatalf("failure lines %q, want the step's last 20", err.Lines)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "[app 2/3] RUN make: process") || strings.Contains(msg, "rpc error") {
		t.Fatalf("error text %q", msg)
	}
}

func TestAFailureBeforeAnyStepIsBuildKitsOwnReason(t *testing.T) {
	p := newPrinter(&strings.Builder{})
	err := p.failure(errors.New("rpc error: code = Unknown desc = failed to solve with frontend dockerfile.v0: failed to create LLB definition: target stage nope could not be found"))
	if err.Step != "" || err.Error() != "failed to create LLB definition: target stage nope could not be found" {
		t.Fatalf("%q", err.Error())
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
