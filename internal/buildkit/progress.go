package buildkit

import (
	"bytes"
	"context"
	"io"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
	digest "github.com/opencontainers/go-digest"
)

// tailLines is how many of a step's last output lines a failure carries.
const tailLines = 20

// showProgress prints the statuses of a solve as BuildKit's plain progress (progressui, the
// printer of `buildctl --progress=plain` and buildx) while tr follows them for the failing step
// and the report; it returns when statuses is closed and everything is printed. progressui fits
// the log format: the log was already this plain format, and its one addition is each output
// line's time since the step started ("#5 0.213 make: ..."), which a log reader wants anyway.
func showProgress(statuses <-chan *client.SolveStatus, log io.Writer, tr *tracker) {
	disp, err := progressui.NewDisplay(log, progressui.PlainMode)
	if err != nil { // PlainMode on any writer: no error is possible; follow the statuses regardless
		for st := range statuses {
			tr.update(st)
		}
		return
	}
	shown := make(chan *client.SolveStatus)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Never cancelled: a cancelled build's last statuses (its CANCELED steps) still print.
		disp.UpdateFrom(context.Background(), shown)
	}()
	for st := range statuses {
		tr.update(st)
		shown <- st
	}
	close(shown)
	<-done
}

// tracker follows a solve's statuses: each step's last lines (so that a failure names the
// step and shows what it printed), which steps came from the cache, and how long the phases
// took.
type tracker struct {
	steps  map[digest.Digest]*step
	failed *step // the first step that ended with an error of its own
}

type step struct {
	name               string
	started, completed *time.Time
	cached             bool
	err                string
	partial            map[int][]byte // per stream: output not yet ended by a newline
	tail               []string
}

func newTracker() *tracker {
	return &tracker{steps: map[digest.Digest]*step{}}
}

func (t *tracker) step(d digest.Digest) *step {
	s := t.steps[d]
	if s == nil {
		s = &step{partial: map[int][]byte{}}
		t.steps[d] = s
	}
	return s
}

func (t *tracker) update(st *client.SolveStatus) {
	for _, v := range st.Vertexes {
		s := t.step(v.Digest)
		if v.Name != "" {
			s.name = v.Name
		}
		if v.Started != nil && s.started == nil {
			s.started = v.Started
		}
		s.cached = s.cached || v.Cached
		if v.Completed == nil || s.completed != nil {
			continue
		}
		s.completed = v.Completed
		if v.Error != "" {
			s.err = v.Error
			// A cache import that misses (no cache yet for this branch) is no failure: BuildKit
			// goes on without it, and the build's own error is the cause to report.
			if t.failed == nil && !canceled(v.Error) && !strings.HasPrefix(v.Name, "importing cache manifest from ") {
				t.failed = s
			}
		}
	}
	for _, l := range st.Logs {
		t.log(t.step(l.Vertex), l.Stream, l.Data)
	}
}

func (t *tracker) log(s *step, stream int, data []byte) {
	buf := append(s.partial[stream], data...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		s.line(string(bytes.TrimRight(buf[:i], "\r")))
		buf = buf[i+1:]
	}
	if len(buf) > 64<<10 { // a line without end: keep it in pieces rather than hold it
		s.line(string(buf))
		buf = nil
	}
	s.partial[stream] = append([]byte(nil), buf...)
}

func (s *step) line(text string) {
	s.tail = append(s.tail, text)
	if len(s.tail) > tailLines {
		s.tail = s.tail[len(s.tail)-tailLines:]
	}
}

// lines is the step's last lines, with what it wrote without a final newline.
func (s *step) lines() []string {
	out := append([]string(nil), s.tail...)
	for _, stream := range []int{1, 2} {
		if rest := s.partial[stream]; len(rest) > 0 {
			out = append(out, string(rest))
		}
	}
	if len(out) > tailLines {
		out = out[len(out)-tailLines:]
	}
	return out
}

// startedAStep reports whether a step of the Dockerfile started: before that, a build whose
// daemon went away can be sent to another daemon without running anything twice.
func (t *tracker) startedAStep() bool {
	for _, s := range t.steps {
		if s.started != nil && isStep(s.name) {
			return true
		}
	}
	return false
}

// isStep tells a Dockerfile instruction ("[app 2/3] RUN make") from BuildKit's own vertices
// ("[internal] load build definition", "exporting to image", cache import and export).
func isStep(name string) bool {
	return strings.HasPrefix(name, "[") && !strings.HasPrefix(name, "[internal]")
}

// canceled tells a step stopped because another failed (or the build was cancelled) from the
// step that failed.
func canceled(errText string) bool {
	return strings.Contains(errText, "context canceled") || strings.Contains(errText, "context cancelled")
}

// BuildError is a failed build: the step that failed, why, and the last lines it printed.
type BuildError struct {
	Step  string   // "[final 2/3] RUN make"; empty when no step failed (the Dockerfile did not parse)
	Cause string   // BuildKit's reason: "process ... did not complete successfully: exit code: 3"
	Lines []string // the step's last lines of output, at most 20
}

func (e *BuildError) Error() string {
	var b strings.Builder
	if e.Step != "" {
		b.WriteString(e.Step + ": ")
	}
	b.WriteString(e.Cause)
	for _, l := range e.Lines {
		b.WriteString("\n" + l)
	}
	return b.String()
}

// failure turns the solve's error into a BuildError naming the step that failed.
func (t *tracker) failure(err error) *BuildError {
	if t.failed == nil {
		return &BuildError{Cause: solveCause(err)}
	}
	return &BuildError{Step: t.failed.name, Cause: t.failed.err, Lines: t.failed.lines()}
}

// solveCause is the last, most specific part of a gRPC error chain without its transport prefix.
func solveCause(err error) string {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, "desc = "); ok {
		msg = rest
	}
	for _, prefix := range []string{"failed to solve: ", "failed to solve with frontend dockerfile.v0: "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	return strings.TrimSpace(msg)
}
