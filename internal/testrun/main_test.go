package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// stream is `go test -json` of a package with a skipped test, a skipped subtest with a
// two-line reason, a failed test and a passing one, and of a package without tests.
const stream = `{"Action":"start","Package":"example.com/m/a"}
{"Action":"run","Package":"example.com/m/a","Test":"TestDocker"}
{"Action":"output","Package":"example.com/m/a","Test":"TestDocker","Output":"=== RUN   TestDocker\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestDocker","Output":"    a_test.go:9: a log line first\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestDocker","Output":"    a_test.go:12: no Docker engine answers: start it\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestDocker","Output":"        (or set RUNTIMEBUILD_REQUIRE_DOCKER)\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestDocker","Output":"--- SKIP: TestDocker (0.00s)\n"}
{"Action":"skip","Package":"example.com/m/a","Test":"TestDocker","Elapsed":0}
{"Action":"output","Package":"example.com/m/a","Test":"TestTable/one","Output":"=== RUN   TestTable/one\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestTable/one","Output":"--- SKIP: TestTable/one (0.00s)\n"}
{"Action":"skip","Package":"example.com/m/a","Test":"TestTable/one","Elapsed":0}
{"Action":"output","Package":"example.com/m/a","Test":"TestBroken","Output":"=== RUN   TestBroken\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestBroken","Output":"    a_test.go:30: got 1, want 2\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestBroken","Output":"--- FAIL: TestBroken (0.00s)\n"}
{"Action":"fail","Package":"example.com/m/a","Test":"TestBroken","Elapsed":0}
{"Action":"output","Package":"example.com/m/a","Test":"TestFine","Output":"    a_test.go:40: quiet on success\n"}
{"Action":"pass","Package":"example.com/m/a","Test":"TestFine","Elapsed":0}
{"Action":"output","Package":"example.com/m/a","Output":"FAIL\n"}
{"Action":"output","Package":"example.com/m/a","Output":"FAIL\texample.com/m/a\t12.5s\n"}
{"Action":"fail","Package":"example.com/m/a","Elapsed":12.5}
{"Action":"output","Package":"example.com/m/b","Output":"?   \texample.com/m/b\t[no test files]\n"}
{"Action":"skip","Package":"example.com/m/b","Elapsed":0}
{"Action":"output","Package":"example.com/m/c","Output":"ok  \texample.com/m/c\t0.5s\n"}
{"Action":"pass","Package":"example.com/m/c","Elapsed":0.5}
`

func TestTheSummaryNamesEverySkipWithItsReasonAndTheSlowestPackages(t *testing.T) {
	var out strings.Builder
	sum := follow(strings.NewReader(stream), &out)
	sum.print(&out, 13*time.Second)
	got := out.String()
	for _, want := range []string{
		"--- FAIL: TestBroken", "a_test.go:30: got 1, want 2", // a failure shows its output
		"FAIL\texample.com/m/a\t12.5s\n", "?   \texample.com/m/b\t[no test files]\n", "ok  \texample.com/m/c\t0.5s\n",
		"2 package(s) in 13s; slowest: example.com/m/a 12.5s, example.com/m/c 0.5s\n",
		"1 test(s) failed",
		"2 test(s) skipped:\n",
		"  example.com/m/a TestDocker: a_test.go:12: no Docker engine answers: start it (or set RUNTIMEBUILD_REQUIRE_DOCKER)\n",
		"  example.com/m/a TestTable/one: (no reason given)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "quiet on success") || strings.Contains(got, "a log line first") {
		t.Errorf("the output of passing or skipped tests was printed:\n%s", got)
	}
}

func TestNoSkipIsSaidToo(t *testing.T) {
	var out strings.Builder
	follow(strings.NewReader(""), &out).print(&out, time.Second)
	if !strings.Contains(out.String(), "no test skipped") {
		t.Errorf("got %q", out.String())
	}
}

func TestPackagesDefaultToTheWholeModuleAndFourAtOnce(t *testing.T) {
	for _, tc := range []struct {
		args []string
		cpus int
		want []string
	}{
		{nil, 2, []string{"-p", "4", "./..."}},
		{nil, 16, []string{"./..."}},
		{[]string{"-race", "-short"}, 2, []string{"-p", "4", "-race", "-short", "./..."}},
		{[]string{"-run", "TestX/y"}, 2, []string{"-p", "4", "-run", "TestX/y", "./..."}},
		{[]string{"-p=1", "-run=TestX", "./internal/progress"}, 2, []string{"-p=1", "-run=TestX", "./internal/progress"}},
		{[]string{"-count", "1", "github.com/x/y"}, 8, []string{"-count", "1", "github.com/x/y"}},
		{[]string{"-p", "2", "-count", "1"}, 2, []string{"-p", "2", "-count", "1", "./..."}},
	} {
		if got := goTestArgs(tc.args, tc.cpus); !slices.Equal(got, tc.want) {
			t.Errorf("goTestArgs(%q, %d cpus) = %q, want %q", tc.args, tc.cpus, got, tc.want)
		}
	}
}
