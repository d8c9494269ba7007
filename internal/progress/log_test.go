package progress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// clock is a fake time that tests move by hand; After fires when Advance passes it.
type clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	return ch
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var keep []waiter
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			keep = append(keep, w)
		} else {
			w.ch <- c.now
		}
	}
	c.waiters = keep
	c.mu.Unlock()
}

// waiting reports how many After channels have not fired yet.
func (c *clock) waiting() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiters) }

func newClock() *clock { return &clock{now: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)} }

var stamped = regexp.MustCompile(`^\[runtime-build\] \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ `)

func TestAutoIsPlainOffATerminal(t *testing.T) {
	if got := New(&bytes.Buffer{}, Auto).Mode(); got != Plain {
		t.Fatalf("a buffer: mode %s, want plain", got)
	}
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := New(f, Auto).Mode(); got != Plain {
		t.Fatalf("a regular file: mode %s, want plain", got)
	}
}

func TestPlainLinesAreTimestampedWithoutCarriageReturnsOrColours(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	log := New(&out, Plain).WithClock(c)
	log.Infof("packing %d entries", 3)
	m := log.Meter("uploading", 100<<20, 0)
	for i := 0; i < 100; i++ { // 1 MiB a second for 100 s
		c.Advance(time.Second)
		m.Update(int64(i+1)<<20, 100<<20)
	}
	m.Done()
	live := log.Status("b1")
	live.Update("WORKING", time.Second)
	live.Done()
	log.Warnf("2 packed file(s) differ from HEAD")
	log.Resultf("runtime-build/a.tar.gz sha256:00")

	text := out.String()
	if strings.ContainsAny(text, "\r\x1b") {
		t.Fatalf("plain output holds a carriage return or an escape sequence:\n%q", text)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	progressLines := 0
	for _, l := range lines[:len(lines)-1] {
		if !stamped.MatchString(l) {
			t.Errorf("line without a timestamp: %q", l)
		}
		if strings.Contains(l, "uploading: ") {
			progressLines++
		}
	}
	if progressLines != 10 { // at most one every 10 s of a 100 s transfer
		t.Errorf("%d progress lines in 100 s, want 10:\n%s", progressLines, text)
	}
	if want := "uploading: 10.0 MiB of 100.0 MiB (10%), 1.0 MiB/s, about 1m30s left"; !strings.Contains(text, want) {
		t.Errorf("no line %q in:\n%s", want, text)
	}
	if last := lines[len(lines)-1]; last != "runtime-build/a.tar.gz sha256:00" {
		t.Errorf("the result line %q carries more than the artifact", last)
	}
}

func TestAShortTransferPrintsNoProgressLine(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	log := New(&out, Plain).WithClock(c)
	m := log.Meter("packing", 1000, 10)
	for i := 0; i < 10; i++ {
		c.Advance(500 * time.Millisecond)
		m.Add(100)
		m.Item()
	}
	m.Done()
	if out.Len() != 0 {
		t.Fatalf("a 5 s transfer printed:\n%s", out.String())
	}
}

func TestQuietKeepsWarningsAndResults(t *testing.T) {
	var out bytes.Buffer
	log := New(&out, Quiet)
	log.Infof("packing")
	m := log.Meter("packing", 10, 1)
	m.Add(10)
	m.Done()
	log.Warnf("careful")
	log.Resultf("done")
	if got, want := out.String(), "[runtime-build] warning: careful\ndone\n"; got != want {
		t.Fatalf("quiet output %q, want %q", got, want)
	}
}

func TestTheTerminalBarDrawsAndLinesPrintWholeAboveIt(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	log := New(&out, TTY).WithClock(c).WithWidth(120)
	m := log.Meter("packing", 4<<20, 4)
	for i := 0; i < 4; i++ {
		c.Advance(120 * time.Millisecond) // past the bar's redraw interval
		m.Add(1 << 20)
		m.Item()
		if i == 1 {
			log.Warnf("symlink x points outside the source")
		}
	}
	m.Done()
	log.Resultf("the artifact")
	text := out.String()
	if !strings.Contains(text, "\r") || !strings.Contains(text, "packing 2/4 files") || !strings.Contains(text, "MiB") {
		t.Fatalf("no bar was drawn:\n%q", text)
	}
	if !strings.Contains(text, "\r\x1b[2K[runtime-build] warning: symlink x points outside the source\n[runtime-build] packing") {
		t.Fatalf("the warning is not a whole line of its own with the bar drawn again below it:\n%q", text)
	}
	if !strings.HasSuffix(text, "\r\x1b[2Kthe artifact\n") {
		t.Fatalf("the bar is not cleared before the result line:\n%q", text)
	}
}

func TestTheBarIsNeverWiderThanTheTerminal(t *testing.T) {
	for _, cols := range []int{20, 40, 80, 132} {
		var out bytes.Buffer
		c := newClock()
		log := New(&out, TTY).WithClock(c).WithWidth(cols)
		m := log.Meter("packing", 3<<40, 123456)
		for i := 0; i < 50; i++ {
			c.Advance(time.Second)
			m.Add(1 << 35)
			m.Item()
		}
		log.Infof("a line of %s", strings.Repeat("x", 10))
		m.Done()
		live := log.Status(strings.Repeat("f", 64))
		live.Update("WORKING", 0)
		live.Done()
		for _, seg := range regexp.MustCompile(`\r|\n|\x1b\[2K`).Split(out.String(), -1) {
			if strings.HasPrefix(seg, Prefix+"a line") {
				continue // printed lines may wrap; only the redrawn line must fit
			}
			if n := utf8.RuneCountInString(seg); n >= cols {
				t.Fatalf("at %d columns a drawn line is %d wide: %q", cols, n, seg)
			}
		}
	}
}

func TestTheTerminalStatusLineTicksUntilDone(t *testing.T) {
	var out syncBuffer
	c := newClock()
	log := New(&out, TTY).WithClock(c).WithWidth(120)
	live := log.Status("abc")
	live.Update("WORKING", 0)
	for i := 0; i < 3; i++ { // the spinner renders itself every 100 ms
		waitUntil(t, func() bool { return c.waiting() == 1 })
		c.Advance(100 * time.Millisecond)
	}
	waitUntil(t, func() bool { return strings.Contains(out.String(), "build abc: WORKING "+spinner[3]) })
	live.Done() // returns once the spinner has stopped
	size := out.Len()
	c.Advance(time.Second)
	if out.Len() != size || c.waiting() > 1 {
		t.Fatal("the status line still renders after Done")
	}
	if !strings.HasSuffix(out.String(), "\r\x1b[2K") {
		t.Fatalf("the status line is not cleared: %q", out.String())
	}
}

// TestPlainModeBeatsInEveryState runs ten minutes of fake time in each state a run waits in,
// 10 s at a time, and reads the gaps between the lines' own timestamps: none exceeds Heartbeat,
// whether the build answers, its polls fail, it never answers, or a transfer stalls.
func TestPlainModeBeatsInEveryState(t *testing.T) {
	type state struct {
		step func(i int) // called after each 10 s
		done func()
	}
	for _, tt := range []struct {
		name  string
		start func(log *Log) state
		want  string
	}{
		{"a silent build that answers every 10 s, with one log line", func(log *Log) state {
			live := log.Status("b1")
			return state{func(i int) {
				if i == 18 {
					live.Line("Step 3/9 : RUN make")
				}
				live.Update("WORKING", time.Duration(i)*10*time.Second)
			}, live.Done}
		}, "build b1: still WORKING after 1m0s"},
		{"polls that fail after the first two minutes", func(log *Log) state {
			live := log.Status("b1")
			return state{func(i int) {
				if i <= 12 {
					live.Update("WORKING", time.Duration(i)*10*time.Second)
				}
			}, live.Done}
		}, "build b1: no answer for 1m0s (last status WORKING after 2m0s); polling on"},
		{"a build that never answers", func(log *Log) state {
			live := log.Status("b1")
			return state{func(int) {}, live.Done}
		}, "build b1: no status yet after 1m0s; polling on"},
		{"an upload that stalls after its first MiB", func(log *Log) state {
			m := log.Meter("uploading", 100<<20, 0)
			return state{func(i int) {
				if i == 1 {
					m.Add(1 << 20)
				}
			}, m.Done}
		}, "uploading: 1.0 MiB of 100.0 MiB (1%)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out syncBuffer
			c := newClock()
			log := New(&out, Plain).WithClock(c)
			begin := c.Now()
			st := tt.start(log)
			for i := 1; i <= 60; i++ {
				waitUntil(t, func() bool { return c.waiting() == 1 }) // the heartbeat waits
				c.Advance(10 * time.Second)
				st.step(i)
			}
			waitUntil(t, func() bool { return c.waiting() == 1 })
			end := c.Now()
			st.done() // returns once the heartbeat has stopped
			size := out.Len()
			c.Advance(5 * time.Minute)
			if out.Len() != size {
				t.Fatalf("a line after Done:\n%s", out.String())
			}
			last := begin
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				at, err := time.Parse(time.RFC3339, strings.Fields(line)[1])
				if err != nil {
					t.Fatalf("line without a time: %q", line)
				}
				if gap := at.Sub(last); gap > Heartbeat {
					t.Fatalf("%s without a line before %q:\n%s", gap, line, out.String())
				}
				last = at
			}
			if gap := end.Sub(last); gap > Heartbeat {
				t.Fatalf("%s without a line at the end:\n%s", gap, out.String())
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Fatalf("no line %q:\n%s", tt.want, out.String())
			}
		})
	}
}

func TestTextFromTheNetworkCannotForgeLines(t *testing.T) {
	evil := "b1\n::error::forged\r\x1b[2K\x1b]0;title\x07\u202egnp.exe\x9b\u009b"
	for _, mode := range []string{Plain, TTY, Quiet} {
		var out bytes.Buffer
		log := New(&out, mode)
		log.Warnf("build %s ended FAILURE", evil)
		log.Resultf("%s", evil)
		text := out.String()
		if strings.Count(text, "\n") != 2 || strings.ContainsAny(text, "\r\x1b\x07\u202e\u009b") || !utf8.ValidString(text) || strings.Contains(text, "\n::") {
			t.Fatalf("%s: the text reached the output raw: %q", mode, text)
		}
		if !strings.Contains(text, `b1\n::error::forged\r\x1b[2K\x1b]0;title\a\u202egnp.exe\x9b\u009b`) {
			t.Fatalf("%s: the text is not shown escaped: %q", mode, text)
		}
	}
	err := EscapeError(fmt.Errorf("wrapped: %w", io.ErrUnexpectedEOF))
	if !errors.Is(err, io.ErrUnexpectedEOF) || EscapeError(errors.New("a\nb")).Error() != `a\nb` {
		t.Fatalf("EscapeError: %v", err)
	}
}

func TestTheResultGoesAloneToItsOwnWriter(t *testing.T) {
	var stderr, stdout bytes.Buffer
	log := New(&stderr, Plain).WithResults(&stdout)
	log.Infof("packing")
	log.Resultf("registry.test/app@sha256:%s", strings.Repeat("0", 64))
	if got := stdout.String(); got != "registry.test/app@sha256:"+strings.Repeat("0", 64)+"\n" {
		t.Fatalf("stdout %q", got)
	}
	if strings.Contains(stderr.String(), "sha256") {
		t.Fatalf("the result went to stderr too: %q", stderr.String())
	}
}

func TestInterruptClearsTheBarForGood(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	log := New(&out, TTY).WithClock(c).WithWidth(120)
	m := log.Meter("packing", 100, 0)
	c.Advance(time.Second)
	m.Add(10)
	log.Interrupt()
	c.Advance(time.Second)
	m.Add(10)
	log.Infof("interrupted")
	if !strings.HasSuffix(out.String(), "\r\x1b[2K[runtime-build] interrupted\n") {
		t.Fatalf("the bar was drawn after Interrupt: %q", out.String())
	}
}

// waitUntil polls cond with a deadline (the spinner's goroutine runs on its own).
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		runtime.Gosched()
	}
}

func TestGitHubErrorIsOneEscapedWorkflowCommand(t *testing.T) {
	var out bytes.Buffer
	GitHubError(&out, errors.New("build b1 ended FAILURE: 100% broken\nsee logs\r"))
	if got, want := out.String(), "::error title=runtimebuild::build b1 ended FAILURE: 100%25 broken%0Asee logs%0D\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 3 << 30: "3.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the bar's own renderer goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.buf.String() }
func (s *syncBuffer) Len() int       { s.mu.Lock(); defer s.mu.Unlock(); return s.buf.Len() }

// TestAt80ColumnsBothBarsShowAndKeepTheirWidth draws the packing bar (with a file count) and the
// upload bar at 80 columns through a whole transfer: each frame fits, has a bar of at least
// minBar columns, and the bar does not change width as the counts grow.
func TestAt80ColumnsBothBarsShowAndKeepTheirWidth(t *testing.T) {
	bar := regexp.MustCompile(`\[([= ]*)\]`)
	for _, tt := range []struct {
		what  string
		total int64
		items int
	}{{"packing", 3 << 30, 12345}, {"uploading", 900 << 20, 0}} {
		var out bytes.Buffer
		c := newClock()
		log := New(&out, TTY).WithClock(c).WithWidth(80)
		m := log.Meter(tt.what, tt.total, tt.items)
		for i := 1; i <= 100; i++ {
			c.Advance(time.Second)
			m.Update(tt.total*int64(i)/100, tt.total)
			for range tt.items / 100 {
				m.Item()
			}
		}
		m.Done()
		widths := map[int]bool{}
		frames := 0
		for _, seg := range regexp.MustCompile(`\r\x1b\[2K`).Split(out.String(), -1) {
			if seg == "" {
				continue
			}
			frames++
			if n := utf8.RuneCountInString(seg); n >= 80 {
				t.Fatalf("%s: a frame is %d wide: %q", tt.what, n, seg)
			}
			b := bar.FindStringSubmatch(seg)
			if b == nil || len(b[1]) < minBar {
				t.Fatalf("%s: no bar of %d columns in %q", tt.what, minBar, seg)
			}
			widths[len(b[1])] = true
		}
		if frames < 50 || len(widths) != 1 {
			t.Fatalf("%s: %d frames, bar widths %v; want one width:\n%q", tt.what, frames, widths, out.String())
		}
	}
}
