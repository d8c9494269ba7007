// Package command runs external programs (git) through bitfield/script with a context,
// keeping their standard error apart so that a failure says what the program said.
package command

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/bitfield/script"
)

// Output runs name with args and returns its standard output. On failure the error reads
// "name args: <what the program wrote to stderr>".
func Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stdout, stderr bytes.Buffer
	p := script.NewPipe().WithContext(ctx).WithStderr(&stderr).ExecCommand(name, args...)
	// The pipe closes itself at EOF and then reports its exit status through Error: read it
	// once to the end, never twice.
	out := &recordingWriter{w: &stdout}
	_, _ = io.Copy(out, p)
	if out.err != nil {
		cancel() // stop the program; its output has nowhere to go
		_, _ = io.Copy(io.Discard, p)
	}
	err := p.Error()
	switch {
	case out.err != nil:
		return stdout.Bytes(), fmt.Errorf("%s: writing its output: %w", describe(name, args), out.err)
	case ctx.Err() != nil:
		return stdout.Bytes(), fmt.Errorf("%s: %w", describe(name, args), ctx.Err())
	case err != nil:
		return stdout.Bytes(), &Error{Command: describe(name, args), Stderr: strings.TrimSpace(stderr.String()), Err: err}
	}
	return stdout.Bytes(), nil
}

// recordingWriter keeps the first write error, to tell it from the program's own failure.
type recordingWriter struct {
	w   io.Writer
	err error
}

func (r *recordingWriter) Write(b []byte) (int, error) {
	n, err := r.w.Write(b)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

// Error is a program that ran and failed.
type Error struct {
	Command string // the command line, for the message
	Stderr  string // what it wrote to standard error, trimmed; may be empty
	Err     error  // the exit status
}

func (e *Error) Error() string {
	if e.Stderr == "" {
		return e.Command + ": " + e.Err.Error() // it said nothing: the exit status is all there is
	}
	return e.Command + ": " + Summary(e.Stderr)
}

// Unwrap returns the exit status error.
func (e *Error) Unwrap() error { return e.Err }

func describe(name string, args []string) string {
	return strings.TrimSpace(name + " " + strings.Join(args, " "))
}

// Summary keeps a program's error output to one line: the first line (git's "fatal: ...") and
// the last two (where a program that logs as it goes says what failed).
func Summary(stderr string) string {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > 3 {
		lines = []string{lines[0], "…", lines[len(lines)-2], lines[len(lines)-1]}
	}
	return strings.Join(lines, "; ")
}
