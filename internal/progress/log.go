// Package progress prints the human lines of the tool on stderr, prefixed "[runtime-build]":
// on a terminal with progress bars and a live build status, elsewhere (CI) as plain
// timestamped lines with no carriage returns or colours. The result line goes apart (stdout).
// Every text is escaped here, at the printing edge: what a server sent cannot end a line,
// move the cursor or start a workflow command.
package progress

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// Prefix starts every human line this tool prints.
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

// Heartbeat is the longest silence while a build runs in plain mode: CI systems end jobs that
// print nothing for some minutes.
const Heartbeat = 60 * time.Second

// redrawEvery is the least time between two renders of a terminal bar.
const redrawEvery = 100 * time.Millisecond

// Logger receives human lines: *Log is one, Discard drops them. Packages that print take one.
type Logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// Discard is the Logger that prints nothing.
var Discard Logger = discard{}

type discard struct{}

// The sinks at the seam.
var (
	_ Logger    = (*Log)(nil)
	_ io.Writer = (*Meter)(nil)
)

func (discard) Infof(string, ...any) {}
func (discard) Warnf(string, ...any) {}

// Clock is the time a Log reads and waits on; tests inject a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real time.
var SystemClock Clock = realClock{}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Log writes prefixed lines. Use New; safe for concurrent use.
type Log struct {
	mu          sync.Mutex
	w           io.Writer // human lines
	out         io.Writer // the result line
	mode        string
	clock       Clock
	cols        func() int // terminal width
	drawn       string     // the bar or live line now on the terminal (TTY); lines print above it
	interrupted bool       // after Interrupt nothing is drawn any more
	lastLine    time.Time  // when the last human line was printed
}

// New returns a Log writing to w in mode (Auto: TTY when w is a terminal, else Plain). The
// result line goes to w too until WithResults names another writer.
func New(w io.Writer, mode string) *Log {
	if mode == Auto || mode == "" {
		mode = Plain
		if f, ok := w.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
			mode = TTY
		}
	}
	l := &Log{w: w, out: w, mode: mode, clock: SystemClock}
	l.cols = func() int { return terminalWidth(w, 80) }
	l.lastLine = l.clock.Now()
	return l
}

// WithResults sends the result line to out (standard output), alone and without a prefix.
func (l *Log) WithResults(out io.Writer) *Log {
	l.out = out
	return l
}

// WithClock makes the Log read and wait on c (tests).
func (l *Log) WithClock(c Clock) *Log {
	l.clock = c
	l.lastLine = c.Now()
	return l
}

// WithWidth fixes the terminal width (tests).
func (l *Log) WithWidth(cols int) *Log {
	l.cols = func() int { return cols }
	return l
}

// WithColumns is the width to draw at when w is no terminal that can tell its size (PROGRESS=tty
// into a pipe): the edge passes COLUMNS. Zero or less keeps 80.
func (l *Log) WithColumns(cols int) *Log {
	if cols > 0 {
		w := l.w
		l.cols = func() int { return terminalWidth(w, cols) }
	}
	return l
}

// terminalWidth is the width of the terminal w writes to: its size, else fallback.
func terminalWidth(w io.Writer, fallback int) int {
	if f, ok := w.(interface{ Fd() uintptr }); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			return cols
		}
	}
	return fallback
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

// Resultf prints the line naming the artifact on the result writer: alone, without a prefix
// or a timestamp, never silenced, so that a script reads it as it is.
func (l *Log) Resultf(format string, args ...any) {
	text := Escape(fmt.Sprintf(format, args...))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.out == l.w {
		l.erase()
	}
	fmt.Fprintln(l.out, text)
	if l.out == l.w {
		l.redraw()
	}
}

func (l *Log) line(stamp bool, kind, format string, args ...any) {
	now := l.clock.Now()
	text := Prefix
	if stamp && l.mode == Plain {
		text += now.UTC().Format(time.RFC3339) + " "
	}
	text += kind + Escape(fmt.Sprintf(format, args...))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastLine = now
	l.erase()
	fmt.Fprintln(l.w, text)
	l.redraw() // the bar stays below the lines
}

// clearLine returns to the start of the terminal line and erases it.
const clearLine = "\r\x1b[2K"

// erase clears the drawn line (lock held).
func (l *Log) erase() {
	if l.drawn != "" {
		io.WriteString(l.w, clearLine)
	}
}

// redraw draws the drawn line again after a line printed above it (lock held).
func (l *Log) redraw() {
	if l.drawn != "" {
		io.WriteString(l.w, l.drawn)
	}
}

// draw replaces the terminal's bar line with text, cut to the terminal's width.
func (l *Log) draw(text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.interrupted {
		return
	}
	l.erase()
	l.drawn = fit(text, l.cols()-1)
	io.WriteString(l.w, l.drawn)
}

// undraw clears the bar line for good.
func (l *Log) undraw() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.erase()
	l.drawn = ""
}

// Interrupt clears the bar or live line at once and draws nothing more: Ctrl-C or SIGTERM
// came, and the lines that follow say what happened.
func (l *Log) Interrupt() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.erase()
	l.drawn = ""
	l.interrupted = true
}

// fit cuts text to cols columns (one per rune: the bar's text is narrow).
func fit(text string, cols int) string {
	if cols < 1 {
		cols = 1
	}
	if utf8.RuneCountInString(text) <= cols {
		return text
	}
	r := []rune(text)
	if cols == 1 {
		return string(r[:1])
	}
	return string(r[:cols-1]) + "…"
}

// Escape makes text from anywhere safe to print as part of one line: control characters
// (newlines, carriage returns, ANSI and OSC escapes, C1 controls) and the Unicode marks that
// reorder a line are written as Go escapes (\n, \x1b, \u202e); tabs become spaces.
func Escape(text string) string {
	clean := true
	for i, r := range text {
		if unsafeRune(r) || r == '\t' || (r == utf8.RuneError && invalidAt(text, i)) {
			clean = false
			break
		}
	}
	if clean {
		return text
	}
	var b strings.Builder
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case r == utf8.RuneError && size == 1: // a byte that is no UTF-8 (0x9b is CSI to some terminals)
			fmt.Fprintf(&b, `\x%02x`, text[i])
		case r == '\t':
			b.WriteByte(' ')
		case unsafeRune(r):
			q := strconv.QuoteRune(r) // '\n', '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func invalidAt(text string, i int) bool {
	_, size := utf8.DecodeRuneInString(text[i:])
	return size == 1
}

func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r == 0x2028, r == 0x2029, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f:
		return true
	}
	return false
}

// escapedError is an error whose text is safe to print.
type escapedError struct{ err error }

func (e escapedError) Error() string { return Escape(e.err.Error()) }
func (e escapedError) Unwrap() error { return e.err }

// EscapeError returns err with its text escaped like every printed line (mage prints the
// error a target returns); errors.Is and errors.As still see the original. nil stays nil.
func EscapeError(err error) error {
	if err == nil {
		return nil
	}
	return escapedError{err}
}

// Meter follows one transfer of bytes (and, when counted, items such as files).
type Meter struct {
	log   *Log
	what  string
	items int // items in all; 0: not counted

	mu        sync.Mutex
	total     int64 // bytes in all; -1: unknown
	done      int64
	itemsDone int
	start     time.Time
	printed   time.Time // the last plain line or terminal render (or the start)
	ended     bool      // the bar was drawn complete

	stopBeat func() // ends the plain heartbeat
}

// Meter starts following a transfer named what ("packing", "uploading") of total bytes
// (-1: unknown) and items items (0: not counted). Call Done when it ends, on every path.
func (l *Log) Meter(what string, total int64, items int) *Meter {
	now := l.clock.Now()
	m := &Meter{log: l, what: what, total: total, items: items, start: now, printed: now}
	switch l.mode {
	case TTY:
		l.draw(m.bar(now))
	case Plain: // a stalled transfer still prints its state every Heartbeat
		m.stopBeat = l.beat(func(now time.Time) string { return m.status(now) })
	}
	return m
}

// Add counts n more bytes.
func (m *Meter) Add(n int64) {
	m.mu.Lock()
	m.done += n
	m.mu.Unlock()
	m.maybePrint()
}

// Write counts the bytes of p, so that a stream can be teed into the meter; it never fails.
func (m *Meter) Write(p []byte) (int, error) {
	m.Add(int64(len(p)))
	return len(p), nil
}

// Item counts one more item (a file packed).
func (m *Meter) Item() {
	m.mu.Lock()
	m.itemsDone++
	m.mu.Unlock()
	m.maybePrint()
}

// Update sets the bytes done and the total, for a transfer that may start over (a retried upload).
func (m *Meter) Update(done, total int64) {
	m.mu.Lock()
	m.done, m.total = done, total
	m.mu.Unlock()
	m.maybePrint()
}

// Done ends the transfer: the bar is cleared; plain mode prints nothing more.
func (m *Meter) Done() {
	if m.log.mode == TTY {
		m.log.undraw()
	}
	m.mu.Lock()
	stop := m.stopBeat
	m.stopBeat = nil
	m.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// beat prints line() in plain mode whenever Heartbeat has passed without a line, whatever the
// reason for the silence (a quiet build, polls that fail, a stalled transfer), until the
// returned function is called; that function returns once the beat has stopped.
func (l *Log) beat(line func(now time.Time) string) (stop func()) {
	quit, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			l.mu.Lock()
			due := l.lastLine.Add(Heartbeat)
			l.mu.Unlock()
			now := l.clock.Now()
			if !now.Before(due) {
				l.Infof("%s", line(now))
				continue
			}
			select {
			case <-quit:
				return
			case <-l.clock.After(due.Sub(now)):
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-stopped
	}
}

// maybePrint renders the terminal bar at most every redrawEvery, and prints a plain progress
// line when PlainEvery has passed since the last one.
func (m *Meter) maybePrint() {
	every := PlainEvery
	switch m.log.mode {
	case TTY:
		every = redrawEvery
	case Plain:
	default:
		return
	}
	now := m.log.clock.Now()
	m.mu.Lock()
	complete := m.total > 0 && m.done >= m.total && m.log.mode == TTY && !m.ended // the bar shows the end, however soon it came
	due := now.Sub(m.printed) >= every || complete
	m.ended = m.ended || complete
	if due {
		m.printed = now
	}
	m.mu.Unlock()
	if !due {
		return
	}
	if m.log.mode == TTY {
		m.log.draw(m.bar(now))
		return
	}
	m.log.Infof("%s", m.status(now))
}

// minBar is the narrowest bar worth drawing: below it the counts give way first.
const minBar = 10

// maxBar is the widest bar drawn, however wide the terminal.
const maxBar = 30

// bar is the terminal line: "[runtime-build] packing 12/345 files  42% [=====>      ] 1.2 MiB/3.0 MiB 4.1 MiB/s 2s left",
// fitted to the terminal: the rate, the word "files", the total and the bytes give way, in that
// order, to keep a bar of at least minBar columns. The layout is chosen with every count at its
// widest, so that the bar keeps its width from one render to the next.
func (m *Meter) bar(now time.Time) string {
	// Not schollz/progressbar v3.19.1: it shrinks only its bar, never its 35-50 columns of counts, rate and times, and measures only an *os.File.
	m.mu.Lock()
	defer m.mu.Unlock()
	rate, left := m.rate(now)
	cols := m.log.cols() - 1 // the last column would wrap on some terminals
	if m.total <= 0 {
		text := Prefix + m.what + " " + Bytes(m.done)
		if rate > 0 {
			text += fmt.Sprintf(" %s/s", Bytes(int64(rate)))
		}
		return text
	}
	pct := min(m.done*100/m.total, 100)
	files := func(word bool) (string, int) { // the text, and its width when every file is counted
		if m.items <= 0 {
			return "", 0
		}
		s := fmt.Sprintf(" %d/%d", m.itemsDone, m.items)
		widest := 2 + 2*len(strconv.Itoa(m.items))
		if word {
			s, widest = s+" files", widest+len(" files")
		}
		return s, widest
	}
	// Each field is measured at its widest (a size "1023.9 MiB", a rate "1023.9 MiB/s", a time
	// "59m59s left"), so that the layout and the bar's width stay put as the numbers change.
	field := func(text string, widest int) (string, int) { return " " + text, 1 + widest }
	done, doneW := field(Bytes(m.done), 10)
	total, totalW := "/"+Bytes(m.total), 1+len(Bytes(m.total))
	leftText, leftW := field("", 11)
	if left > 0 {
		leftText, _ = field(left.Round(time.Second).String()+" left", 11)
	}
	rateText, rateW := "", 0
	if rate > 0 {
		rateText, rateW = field(Bytes(int64(rate))+"/s", 12)
	}
	for _, v := range []struct {
		word  bool // "files" after the count
		tail  string
		tailW int
	}{
		{true, done + total + rateText + leftText, doneW + totalW + rateW + leftW},
		{true, done + total + leftText, doneW + totalW + leftW},
		{false, done + total + leftText, doneW + totalW + leftW},
		{false, done + leftText, doneW + leftW},
		{false, leftText, leftW},
		{false, "", 0},
	} {
		count, countW := files(v.word)
		head := Prefix + m.what + count + fmt.Sprintf(" %3d%%", pct)
		width := min(cols-utf8.RuneCountInString(Prefix+m.what)-countW-5-v.tailW-3, maxBar)
		if width < minBar {
			continue
		}
		filled := int(int64(width) * pct / 100)
		return head + " [" + strings.Repeat("=", filled) + strings.Repeat(" ", width-filled) + "]" + v.tail
	}
	count, _ := files(false)
	return Prefix + m.what + count + fmt.Sprintf(" %3d%%", pct) // too narrow for a bar: draw cuts it
}

// rate is the bytes a second so far and the time left at that rate (0: unknown).
func (m *Meter) rate(now time.Time) (float64, time.Duration) {
	secs := now.Sub(m.start).Seconds()
	if secs <= 0 || m.done <= 0 {
		return 0, 0
	}
	rate := float64(m.done) / secs
	if m.total <= m.done {
		return rate, 0
	}
	return rate, time.Duration(float64(m.total-m.done) / rate * float64(time.Second))
}

// status is a plain progress line: "uploading: 120.0 MiB of 1.0 GiB (12%), 45.3 MiB/s, about 20s left".
func (m *Meter) status(now time.Time) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	b.WriteString(m.what + ": ")
	if m.items > 0 {
		fmt.Fprintf(&b, "%d of %d files, ", m.itemsDone, m.items)
	}
	b.WriteString(Bytes(m.done))
	if m.total > 0 {
		fmt.Fprintf(&b, " of %s (%d%%)", Bytes(m.total), m.done*100/m.total)
	}
	if rate, left := m.rate(now); rate > 0 {
		fmt.Fprintf(&b, ", %s/s", Bytes(int64(rate)))
		if left > 0 {
			fmt.Fprintf(&b, ", about %s left", left.Round(time.Second))
		}
	}
	return b.String()
}

// Live is the line that shows a build's status while it is polled, and its log lines.
type Live struct {
	log   *Log
	id    string
	start time.Time

	mu      sync.Mutex
	status  string
	frame   int
	elapsed time.Duration // the build's time at the last answer (Update)
	heard   time.Time     // when the last answer came; zero: none yet

	stop, stopped chan struct{} // the terminal spinner's ticker
	stopBeat      func()        // the plain heartbeat
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// Status starts the live line of build id: on a terminal a spinner with the status and the
// time elapsed; in plain mode nothing but a heartbeat line whenever nothing was printed for
// Heartbeat, answers or not (each change of status is logged as a line of its own).
func (l *Log) Status(id string) *Live {
	s := &Live{log: l, id: id, start: l.clock.Now(), status: "waiting for its status"}
	switch l.mode {
	case TTY:
		s.stop, s.stopped = make(chan struct{}), make(chan struct{})
		s.render()
		go s.spin()
	case Plain:
		s.stopBeat = l.beat(s.heartbeat)
	}
	return s
}

// heartbeat is the plain line of a silent build: its last status, or that no answer came.
func (s *Live) heartbeat(now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := Escape(s.id)
	switch {
	case s.heard.IsZero():
		return fmt.Sprintf("build %s: no status yet after %s; polling on", id, now.Sub(s.start).Round(time.Second))
	case now.Sub(s.heard) >= Heartbeat:
		return fmt.Sprintf("build %s: no answer for %s (last status %s after %s); polling on", id,
			now.Sub(s.heard).Round(time.Second), Escape(s.status), s.elapsed.Round(time.Second))
	}
	return fmt.Sprintf("build %s: still %s after %s", id, Escape(s.status), (s.elapsed + now.Sub(s.heard)).Round(time.Second))
}

func (s *Live) spin() {
	defer close(s.stopped)
	for {
		select {
		case <-s.stop:
			return
		case <-s.log.clock.After(redrawEvery):
			s.mu.Lock()
			s.frame++
			s.mu.Unlock()
			s.render()
		}
	}
}

func (s *Live) render() {
	// Not schollz/progressbar v3.19.1: its spinner line is never cut to the terminal, and it spins on the real clock only.
	s.mu.Lock()
	text := fmt.Sprintf("%sbuild %s: %s %s %s", Prefix, Escape(s.id), Escape(s.status), spinner[s.frame%len(spinner)],
		s.log.clock.Now().Sub(s.start).Round(time.Second))
	s.mu.Unlock()
	s.log.draw(text)
}

// Update shows the latest status, an answer that came elapsed into the build (the plain
// heartbeat counts on from it).
func (s *Live) Update(status string, elapsed time.Duration) {
	s.mu.Lock()
	s.status, s.elapsed, s.heard = status, elapsed, s.log.clock.Now()
	s.mu.Unlock()
	if s.log.mode == TTY {
		s.render()
	}
}

// Line prints a line of the build's own log (above the spinner on a terminal); silenced in Quiet mode.
func (s *Live) Line(text string) { s.log.Infof("| %s", text) }

// Done clears the live line (and ends the plain heartbeat).
func (s *Live) Done() {
	if s.stopBeat != nil {
		s.stopBeat()
		s.stopBeat = nil
	}
	if s.stop != nil {
		close(s.stop)
		<-s.stopped
		s.stop = nil
		s.log.undraw()
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
