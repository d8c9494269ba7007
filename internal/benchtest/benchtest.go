// Package benchtest measures the peak memory of a benchmark's work in a child process of the
// test binary, so that the benchmark's own fixtures (test servers, generated data) do not count.
package benchtest

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
)

// Bytes is the size a benchmark works on: RUNTIMEBUILD_BENCH_BYTES when set (to try a
// benchmark quickly), else def.
func Bytes(def int64) int64 {
	if n, err := strconv.ParseInt(os.Getenv("RUNTIMEBUILD_BENCH_BYTES"), 10, 64); err == nil && n > 0 {
		return n
	}
	return def
}

// Child is the variable that marks the child process; its value is the test it runs.
const Child = "RUNTIMEBUILD_BENCH_CHILD"

// ChildPeakRSS runs this test binary again with only test, the extra environment env and
// Child set, and returns the peak resident set size in bytes that the child reported with
// ReportPeakRSS.
func ChildPeakRSS(b *testing.B, test string, env ...string) int64 {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v")
	cmd.Env = append(append(os.Environ(), env...), Child+"="+test)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("%s in a child process: %v\n%s", test, err, out)
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(out)
	if m == nil {
		b.Fatalf("%s in a child process reported no VmHWM:\n%s", test, out)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// InChild skips t unless this process is ChildPeakRSS's child running t.
func InChild(t *testing.T) {
	if os.Getenv(Child) != t.Name() {
		t.Skip("only run as a benchmark's child process, to measure its peak memory")
	}
}

// ReportPeakRSS logs this process's peak resident set size (VmHWM: its own, not that of the
// programs it ran) for ChildPeakRSS to read.
func ReportPeakRSS(t *testing.T) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", regexp.MustCompile(`VmHWM:.*`).Find(status))
}
