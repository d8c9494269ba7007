// Package progress prints the human lines of the tool on stderr, prefixed "[runtime-build]".
package progress

import (
	"fmt"
	"io"
	"sync"
)

// Prefix starts every line this tool prints.
const Prefix = "[runtime-build] "

// Log writes prefixed lines. The zero value is not usable; use New. Safe for concurrent use.
type Log struct {
	mu    sync.Mutex
	w     io.Writer
	quiet bool
}

// New returns a Log writing to w; mode "quiet" keeps only warnings and results.
func New(w io.Writer, mode string) *Log {
	return &Log{w: w, quiet: mode == "quiet"}
}

// Infof prints a line of what is going on.
func (l *Log) Infof(format string, args ...any) {
	if !l.quiet {
		l.line("", format, args...)
	}
}

// Warnf prints a warning; never silenced.
func (l *Log) Warnf(format string, args ...any) { l.line("warning: ", format, args...) }

// Resultf prints the line naming the artifact; never silenced.
func (l *Log) Resultf(format string, args ...any) { l.line("", format, args...) }

func (l *Log) line(kind, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s%s%s\n", Prefix, kind, fmt.Sprintf(format, args...))
}
