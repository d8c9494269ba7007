// Package progress prints the human lines of the tool on stderr, prefixed "[runtime-build]":
// on a terminal with progress bars and a live build status, elsewhere (CI) as plain
// timestamped lines with no carriage returns or colours.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Prefix starts every line this tool prints.
const Prefix = "[runtime-build] "

// The output modes of PROGRESS; Auto picks TTY on a terminal and Plain elsewhere.
const (
	Auto  = "auto"
	TTY   = "tty"
	Plain = "plain"
	Quiet = "quiet"
)

// PlainEvery is the least time between two progress lines of a transfer in plain mode.
const PlainEvery = 10 * time.Second

// Log writes prefixed lines. Use New; safe for concurrent use.
type Log struct {
	mu   sync.Mutex
	w    io.Writer
	mode string
	now  func() time.Time
	bar  *progressbar.ProgressBar // the bar or live line on the terminal; lines print above it
}

// New returns a Log writing to w in mode (Auto: TTY when w is a terminal, else Plain).
func New(w io.Writer, mode string) *Log {
	if mode == Auto || mode == "" {
		mode = Plain
		if f, ok := w.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
			mode = TTY
		}
	}
	return &Log{w: w, mode: mode, now: time.Now}
}

// WithClock makes the Log read the time from now (tests).
func (l *Log) WithClock(now func() time.Time) *Log {
	l.now = now
	return l
}

// Mode is the resolved mode: TTY, Plain or Quiet.
func (l *Log) Mode() string { return l.mode }

// Infof prints a line of what is going on; silenced in Quiet mode.
func (l *Log) Infof(format string, args ...any) {
	if l.mode != Quiet {
		l.line(true, "", format, args...)
	}
}

// Warnf prints a warning; never silenced.
func (l *Log) Warnf(format string, args ...any) { l.line(true, "warning: ", format, args...) }

// Errorf prints one of several problems that together fail the run; never silenced.
func (l *Log) Errorf(format string, args ...any) { l.line(true, "error: ", format, args...) }

// Resultf prints the line naming the artifact; never silenced, never timestamped, so that
// scripts can read the last line as it is.
func (l *Log) Resultf(format string, args ...any) { l.line(false, "", format, args...) }

func (l *Log) line(stamp bool, kind, format string, args ...any) {
	text := Prefix
	if stamp && l.mode == Plain {
		text += l.now().UTC().Format(time.RFC3339) + " "
	}
	text += kind + fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bar != nil {
		text = clearLine + text // over the bar, which draws itself again below at its next render
	}
	fmt.Fprintln(l.w, text)
}

// clearLine returns to the start of the terminal line and erases it.
const clearLine = "\r\x1b[2K"

// barWriter is where bars draw: through the Log's lock, so that a bar and a line never mix.
// Bar methods are never called with that lock held (the bar takes its own lock first).
type barWriter struct{ l *Log }

func (b barWriter) Write(p []byte) (int, error) {
	b.l.mu.Lock()
	defer b.l.mu.Unlock()
	return b.l.w.Write(p)
}

// newBar starts the Log's one bar (max -1: a spinner that renders itself until finished).
// ANSI codes let a finished bar erase its line.
func (l *Log) newBar(max int64, description string, opts ...progressbar.Option) *progressbar.ProgressBar {
	opts = append([]progressbar.Option{
		progressbar.OptionSetWriter(barWriter{l}),
		progressbar.OptionSetDescription(Prefix + description),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionUseANSICodes(true),
		progressbar.OptionSetWidth(30),
	}, opts...)
	bar := progressbar.NewOptions64(max, opts...)
	l.mu.Lock()
	l.bar = bar
	l.mu.Unlock()
	return bar
}

// endBar finishes bar, which erases its line, and detaches it from the Log.
func (l *Log) endBar(bar *progressbar.ProgressBar) {
	bar.Finish()
	l.mu.Lock()
	if l.bar == bar {
		l.bar = nil
	}
	l.mu.Unlock()
}

// Meter follows one transfer of bytes (and, when counted, items such as files).
type Meter struct {
	log   *Log
	what  string
	bar   *progressbar.ProgressBar // TTY only
	items int                      // items in all; 0: not counted

	mu        sync.Mutex
	total     int64 // bytes in all; -1: unknown
	done      int64
	itemsDone int
	start     time.Time
	printed   time.Time // the last plain line (or the start)
	described time.Time // the last bar description change
}

// Meter starts following a transfer named what ("packing", "uploading") of total bytes
// (-1: unknown) and items items (0: not counted). Call Done when it ends, on every path.
func (l *Log) Meter(what string, total int64, items int) *Meter {
	now := l.now()
	m := &Meter{log: l, what: what, total: total, items: items, start: now, printed: now}
	if l.mode == TTY {
		m.bar = l.newBar(total, m.describe(),
			progressbar.OptionShowBytes(true), progressbar.OptionShowTotalBytes(true), progressbar.OptionShowCount(), progressbar.OptionUseIECUnits(true),
			progressbar.OptionSetPredictTime(true), progressbar.OptionSetElapsedTime(true))
	}
	return m
}

// Add counts n more bytes.
func (m *Meter) Add(n int64) {
	m.mu.Lock()
	m.done += n
	m.mu.Unlock()
	if m.bar != nil {
		m.bar.Add64(n)
		return
	}
	m.maybePrint()
}

// Item counts one more item (a file packed).
func (m *Meter) Item() {
	m.mu.Lock()
	m.itemsDone++
	redescribe := m.bar != nil && m.log.now().Sub(m.described) >= 100*time.Millisecond
	if redescribe {
		m.described = m.log.now()
	}
	m.mu.Unlock()
	if redescribe {
		m.bar.Describe(Prefix + m.describe())
	}
}

// Update sets the bytes done and the total, for a transfer that may start over (a retried upload).
func (m *Meter) Update(done, total int64) {
	m.mu.Lock()
	m.done = done
	changed := total != m.total
	m.total = total
	m.mu.Unlock()
	if m.bar != nil {
		if changed {
			m.bar.ChangeMax64(total)
		}
		m.bar.Set64(done)
		return
	}
	m.maybePrint()
}

// Done ends the transfer: the bar is cleared; plain mode prints nothing more.
func (m *Meter) Done() {
	if m.bar != nil {
		m.log.endBar(m.bar)
	}
}

// maybePrint prints a plain progress line when PlainEvery has passed since the last one.
func (m *Meter) maybePrint() {
	if m.log.mode != Plain {
		return
	}
	now := m.log.now()
	m.mu.Lock()
	due := now.Sub(m.printed) >= PlainEvery
	if due {
		m.printed = now
	}
	text := m.status(now)
	m.mu.Unlock()
	if due {
		m.log.Infof("%s", text)
	}
}

// describe is the bar's label: what, and the items when they are counted.
func (m *Meter) describe() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.items > 0 {
		return fmt.Sprintf("%s %d/%d files", m.what, m.itemsDone, m.items)
	}
	return m.what
}

// status is a plain progress line: "uploading: 120.0 MiB of 1.0 GiB (12%), 45.3 MiB/s, about 20s left".
func (m *Meter) status(now time.Time) string {
	var b strings.Builder
	b.WriteString(m.what + ": ")
	if m.items > 0 {
		fmt.Fprintf(&b, "%d of %d files, ", m.itemsDone, m.items)
	}
	b.WriteString(Bytes(m.done))
	if m.total > 0 {
		fmt.Fprintf(&b, " of %s (%d%%)", Bytes(m.total), m.done*100/m.total)
	}
	if secs := now.Sub(m.start).Seconds(); secs > 0 && m.done > 0 {
		rate := float64(m.done) / secs
		fmt.Fprintf(&b, ", %s/s", Bytes(int64(rate)))
		if m.total > m.done {
			left := time.Duration(float64(m.total-m.done) / rate * float64(time.Second))
			fmt.Fprintf(&b, ", about %s left", left.Round(time.Second))
		}
	}
	return b.String()
}

// Live is the line that shows a build's status while it is polled.
type Live struct {
	log *Log
	id  string
	bar *progressbar.ProgressBar // TTY only
}

// Status starts the live line of build id: on a terminal a spinner with the status and the
// time elapsed; elsewhere nothing (each change of status is logged as a line of its own).
func (l *Log) Status(id string) *Live {
	s := &Live{log: l, id: id}
	if l.mode == TTY {
		s.bar = l.newBar(-1, "build "+id+": waiting for its status",
			progressbar.OptionSetElapsedTime(true), progressbar.OptionSpinnerType(14))
		s.bar.Add(0) // starts the spinner's own renderer
	}
	return s
}

// Update shows the latest status.
func (s *Live) Update(status string, _ time.Duration) {
	if s.bar != nil {
		s.bar.Describe(Prefix + "build " + s.id + ": " + status)
	}
}

// Done clears the live line.
func (s *Live) Done() {
	if s.bar != nil {
		s.log.endBar(s.bar)
	}
}

// Bytes formats a size in binary units: "512 B", "1.5 KiB", "3.0 GiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
