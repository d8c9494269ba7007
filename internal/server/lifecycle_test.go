package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// scripted writes logLines lines of output and ends with errText (or succeeds).
type scripted struct {
	logLines int
	errText  string

	mu     sync.Mutex
	asked  []string // what ImageExists was asked
	builds int
}

func (s *scripted) Build(ctx context.Context, job *server.Job, log io.Writer) (string, error) {
	s.mu.Lock()
	s.builds++
	s.mu.Unlock()
	for i := 0; i < s.logLines; i++ {
		fmt.Fprintf(log, "#5 line %07d of the build's output, padded to be long enough to count ..........\n", i)
	}
	if s.errText != "" {
		return "", errors.New(s.errText)
	}
	return job.TargetImage, nil
}

func (s *scripted) ImageExists(_ context.Context, image string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, image)
	return true, nil
}

// clock is a settable time for retention.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestABuildsLogsAreBoundedToTheirLastMiB(t *testing.T) {
	l := start(t, server.Options{Builder: &scripted{logLines: 40000}}) // ~3.5 MiB of output
	id, st, err := l.buildID(t, archive(t, member{Name: "Dockerfile", Body: "FROM scratch\n"}), "localhost/runtime/logs:1")
	if err != nil || st.Status != "SUCCESS" {
		t.Fatalf("%+v %v", st, err)
	}
	logs := l.buildLogs(t, id)
	if len(logs) > 1<<20+100 {
		t.Fatalf("/build_logs returned %d bytes, want the last MiB", len(logs))
	}
	if !strings.HasPrefix(logs, "[earlier output cut") || !strings.Contains(logs, "line 0039999 ") || strings.Contains(logs, "line 0000000 ") {
		t.Fatalf("/build_logs is not the last MiB with a note (starts %q, %d bytes)", logs[:80], len(logs))
	}
	if rest := logs[strings.Index(logs, "\n")+1:]; !strings.HasPrefix(rest, "#5 line ") {
		t.Fatalf("the kept part does not start at a line: %q", rest[:40])
	}
}

func TestABuildsErrorTextIsBounded(t *testing.T) {
	huge := "[app 2/3] RUN make: exit code: 2\n" + strings.Repeat("compiler noise\n", 20000) + "the last line"
	l := start(t, server.Options{Builder: &scripted{errText: huge}})
	_, err := l.build(t, archive(t, member{Name: "Dockerfile", Body: "FROM scratch\n"}), "localhost/runtime/err:1")
	var failed *runtimeapi.BuildFailedError
	if !errors.As(err, &failed) {
		t.Fatalf("%v", err)
	}
	if len(failed.Reason) > 8<<10 || !strings.HasPrefix(failed.Reason, "[app 2/3] RUN make") || !strings.HasSuffix(failed.Reason, "the last line") {
		t.Fatalf("error text of %d bytes, want at most 8 KiB with the step first and the last line last", len(failed.Reason))
	}
}

func TestFinishedBuildsLoseTheirLogsThenAreForgotten(t *testing.T) {
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := start(t, server.Options{Builder: &scripted{logLines: 3}, LogRetention: time.Hour, StatusRetention: 24 * time.Hour, Now: c.Now})
	id, st, err := l.buildID(t, archive(t, member{Name: "Dockerfile", Body: "FROM scratch\n"}), "localhost/runtime/kept:1")
	if err != nil || st.Status != "SUCCESS" {
		t.Fatalf("%+v %v", st, err)
	}
	if logs := l.buildLogs(t, id); !strings.Contains(logs, "line 0000002") {
		t.Fatalf("fresh logs: %q", logs)
	}

	c.add(time.Hour + time.Minute)
	resp := l.get(t, "/build_logs?build_id="+id)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Fatalf("/build_logs after the log retention: %d, want 410", resp.StatusCode)
	}
	if st, err := l.client.BuildStatus(context.Background(), id); err != nil || st.Status != "SUCCESS" {
		t.Fatalf("/build_status after the log retention: %+v %v, want SUCCESS still", st, err)
	}

	c.add(24 * time.Hour)
	if _, err := l.client.BuildStatus(context.Background(), id); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("/build_status after the status retention: %v, want 404", err)
	}
}

func TestImageExistsTakesOnlyImageNames(t *testing.T) {
	b := &scripted{}
	l := start(t, server.Options{Builder: b})
	for _, bad := range []string{"--help", "-q", "../../x", "busybox:latest", "registry.example.test/org/prod:latest", "127.0.0.1:22/x:1", "localhost/runtime-other/app:1", "localhost/runtime:1", "localhost/runtime/../other/app:1", "localhost/runtime//app:1", "localhost/runtime/./app:1"} {
		resp := l.get(t, "/image_exists?image="+bad)
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnprocessableEntity || out["exists"] == true {
			t.Errorf("image %q (no image name, or outside the prefix): %d %v, want 422 and never exists", bad, resp.StatusCode, out)
		}
	}
	if len(b.asked) != 0 {
		t.Fatalf("the builder was asked about %q", b.asked)
	}
	if out := l.imageExists(t, "localhost/runtime/app:1"); out["exists"] != true {
		t.Fatalf("a real name: %v", out)
	}
}

func TestAfterCloseClientsAreToldCANCELLEDAndNewBuildsGet503(t *testing.T) {
	b := blocking{started: make(chan string, 1)}
	l := start(t, server.Options{Builder: b})
	ctx := archive(t, member{Name: "Dockerfile", Body: "FROM scratch\n"})
	resp, out := l.post(t, ctx, map[string]string{"target_image": "localhost/runtime/c:1"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /build: %d", resp.StatusCode)
	}
	<-b.started
	if err := l.srv.Close(); err != nil {
		t.Fatal(err)
	}
	quick, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if l.srv.AwaitReported(quick) {
		t.Fatal("AwaitReported returned before any client read the status")
	}
	reported := make(chan bool, 1)
	go func() { reported <- l.srv.AwaitReported(context.Background()) }()
	st, err := l.client.WaitForBuild(context.Background(), out["build_id"], runtimeapi.Wait{FirstPoll: 10 * time.Millisecond, Interval: 50 * time.Millisecond})
	if st.Status != "CANCELLED" {
		t.Fatalf("a client polling after Close: %+v %v, want CANCELLED", st, err)
	}
	select {
	case ok := <-reported:
		if !ok {
			t.Fatal("AwaitReported: false")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("AwaitReported did not return once the client read CANCELLED")
	}
	resp, body := l.post(t, ctx, map[string]string{"target_image": "localhost/runtime/c:2"})
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body["detail"], "stopping") {
		t.Fatalf("POST /build after Close: %d %v, want 503", resp.StatusCode, body)
	}
}

func TestOnlyTheLatestFinishedBuildsKeepTheirLogs(t *testing.T) {
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := start(t, server.Options{Builder: &scripted{logLines: 1}, Now: c.Now})
	ctx := archive(t, member{Name: "Dockerfile", Body: "FROM scratch\n"})
	var ids []string
	for i := 0; i < 66; i++ {
		c.add(time.Second) // each ends later than the one before
		id, st, err := l.buildID(t, ctx, fmt.Sprintf("localhost/runtime/many:%d", i))
		if err != nil || st.Status != "SUCCESS" {
			t.Fatalf("build %d: %+v %v", i, st, err)
		}
		ids = append(ids, id)
	}
	for i, id := range ids {
		resp := l.get(t, "/build_logs?build_id="+id)
		resp.Body.Close()
		want := http.StatusOK
		if i < 2 {
			want = http.StatusGone // the two oldest: beyond the latest 64
		}
		if resp.StatusCode != want {
			t.Errorf("build %d of 66: /build_logs %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}
