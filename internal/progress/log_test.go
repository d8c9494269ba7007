package progress

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a fake time that tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

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
	log := New(&out, Plain).WithClock(c.Now)
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
	if last := lines[len(lines)-1]; last != "[runtime-build] runtime-build/a.tar.gz sha256:00" {
		t.Errorf("the result line %q carries more than the artifact", last)
	}
}

func TestAShortTransferPrintsNoProgressLine(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	log := New(&out, Plain).WithClock(c.Now)
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
	if got, want := out.String(), "[runtime-build] warning: careful\n[runtime-build] done\n"; got != want {
		t.Fatalf("quiet output %q, want %q", got, want)
	}
}

func TestTheTerminalBarDrawsAndLinesPrintWholeAboveIt(t *testing.T) {
	var out syncBuffer
	log := New(&out, TTY)
	m := log.Meter("packing", 4<<20, 4)
	for i := 0; i < 4; i++ {
		m.Add(1 << 20)
		m.Item()
		time.Sleep(120 * time.Millisecond) // past the bar's render throttle
		if i == 1 {
			log.Warnf("symlink x points outside the source")
		}
	}
	m.Done()
	log.Resultf("the artifact")
	text := out.String()
	if !strings.Contains(text, "\r") || !strings.Contains(text, "packing") || !strings.Contains(text, "MiB") {
		t.Fatalf("no bar was drawn:\n%q", text)
	}
	if !strings.Contains(text, "\r\x1b[2K[runtime-build] warning: symlink x points outside the source\n") {
		t.Fatalf("the warning is not a whole line of its own:\n%q", text)
	}
	if !strings.HasSuffix(text, "\x1b[2K\r[runtime-build] the artifact\n") {
		t.Fatalf("the result line does not stand alone at the end:\n%q", text)
	}
}

func TestTheTerminalStatusLineTicksUntilDone(t *testing.T) {
	var out syncBuffer
	log := New(&out, TTY)
	live := log.Status("abc")
	live.Update("WORKING", 0)
	time.Sleep(350 * time.Millisecond) // the spinner renders itself every 100 ms
	live.Done()
	text := out.String()
	if !strings.Contains(text, "build abc: WORKING") {
		t.Fatalf("no live status line:\n%q", text)
	}
	size := out.Len()
	time.Sleep(250 * time.Millisecond)
	if out.Len() != size {
		t.Fatal("the status line still renders after Done")
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
