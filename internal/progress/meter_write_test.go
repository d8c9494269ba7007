package progress

import (
	"io"
	"strings"
	"testing"
)

func TestAMeterCountsWhatIsWrittenToIt(t *testing.T) {
	m := New(io.Discard, "quiet").Meter("exporting", -1, 0)
	n, err := io.Copy(io.MultiWriter(io.Discard, m), strings.NewReader(strings.Repeat("x", 70000)))
	if err != nil || n != 70000 {
		t.Fatalf("copied %d, %v", n, err)
	}
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	if done != 70000 {
		t.Fatalf("the meter counted %d bytes, want 70000", done)
	}
}
