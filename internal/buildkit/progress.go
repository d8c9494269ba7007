package buildkit

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

// tailLines is how many of a step's last output lines a failure carries.
const tailLines = 20

// printer writes BuildKit's solve status as plain progress, the way `buildctl --progress=plain`
// shows it (#N name, #N 0.5 output, #N DONE 0.3s, #N CACHED, #N ERROR: why), and remembers each
// step's last lines so that a failure can name the step and show what it printed.
type printer struct {
	w      io.Writer
	steps  map[digest.Digest]*step
	order  int
	failed *step // the first step that ended with an error of its own
}

type step struct {
	n       int
	name    string
	started bool
	done    bool
	err     string
	partial map[int][]byte // per stream: output not yet ended by a newline
	tail    []string
}

func newPrinter(w io.Writer) *printer {
	return &printer{w: w, steps: map[digest.Digest]*step{}}
}

func (p *printer) step(d digest.Digest) *step {
	s := p.steps[d]
	if s == nil {
		p.order++
		s = &step{n: p.order, partial: map[int][]byte{}}
		p.steps[d] = s
	}
	return s
}

// update prints what st adds: steps that start, then their transfers and output, then the
// steps that end.
func (p *printer) update(st *client.SolveStatus) {
	for _, v := range st.Vertexes {
		s := p.step(v.Digest)
		if v.Name != "" {
			s.name = v.Name
		}
		if v.Started != nil && !s.started {
			s.started = true
			fmt.Fprintf(p.w, "#%d %s\n", s.n, s.name)
		}
	}
	for _, vs := range st.Statuses {
		if vs.Completed == nil {
			continue // only finished transfers: a running one reports many times a second
		}
		s := p.step(vs.Vertex)
		size := ""
		if vs.Current > 0 {
			size = " " + bytesText(vs.Current)
		}
		fmt.Fprintf(p.w, "#%d %s%s done\n", s.n, vs.ID, size)
	}
	for _, l := range st.Logs {
		p.log(p.step(l.Vertex), l.Stream, l.Data)
	}
	for _, w := range st.Warnings {
		fmt.Fprintf(p.w, "#%d WARN: %s\n", p.step(w.Vertex).n, bytes.TrimSpace(w.Short))
	}
	for _, v := range st.Vertexes {
		s := p.step(v.Digest)
		if v.Completed == nil || s.done {
			continue
		}
		s.done = true
		p.flush(s)
		switch {
		case v.Error != "":
			s.err = v.Error
			fmt.Fprintf(p.w, "#%d ERROR: %s\n", s.n, v.Error)
			if p.failed == nil && !canceled(v.Error) {
				p.failed = s
			}
		case v.Cached:
			fmt.Fprintf(p.w, "#%d CACHED\n", s.n)
		default:
			took := ""
			if v.Started != nil {
				took = fmt.Sprintf(" %.1fs", v.Completed.Sub(*v.Started).Seconds())
			}
			fmt.Fprintf(p.w, "#%d DONE%s\n", s.n, took)
		}
	}
}

func (p *printer) log(s *step, stream int, data []byte) {
	buf := append(s.partial[stream], data...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		p.line(s, string(bytes.TrimRight(buf[:i], "\r")))
		buf = buf[i+1:]
	}
	if len(buf) > 64<<10 { // a line without end: print it in pieces rather than hold it
		p.line(s, string(buf))
		buf = nil
	}
	s.partial[stream] = append([]byte(nil), buf...)
}

func (p *printer) line(s *step, text string) {
	fmt.Fprintf(p.w, "#%d %s\n", s.n, text)
	s.tail = append(s.tail, text)
	if len(s.tail) > tailLines {
		s.tail = s.tail[len(s.tail)-tailLines:]
	}
}

// flush prints what a step wrote without a final newline.
func (p *printer) flush(s *step) {
	for stream, rest := range s.partial {
		if len(rest) > 0 {
			p.line(s, string(rest))
		}
		delete(s.partial, stream)
	}
}

// canceled tells a step stopped because another failed (or the build was cancelled) from the
// step that failed.
func canceled(errText string) bool {
	return strings.Contains(errText, "context canceled") || strings.Contains(errText, "context cancelled")
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.2fMB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2fkB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
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
func (p *printer) failure(err error) *BuildError {
	cause := solveCause(err)
	if p.failed == nil {
		return &BuildError{Cause: cause}
	}
	return &BuildError{Step: p.failed.name, Cause: p.failed.err, Lines: append([]string(nil), p.failed.tail...)}
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
