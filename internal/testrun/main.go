// Command testrun is the README's test command: it runs `go test -json` with the arguments it is
// given (./... when they name no package; at least 4 packages at once), prints what `go test` would (a line per package, the
// output of failed tests), and ends with every skipped test and why, and the slowest packages, so
// that a skip is never silent. It exits with go test's exit code.
//
//	go run ./internal/testrun                 # go test ./...
//	go run ./internal/testrun -race -short    # go test -race -short ./...
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	args := append([]string{"test", "-json"}, goTestArgs(os.Args[1:], runtime.NumCPU())...)
	cmd := exec.Command("go", args...)
	cmd.Stdin, cmd.Stderr = os.Stdin, os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testrun:", err)
		os.Exit(1)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testrun: go test:", err)
		os.Exit(1)
	}
	sum := follow(stdout, os.Stdout)
	err = cmd.Wait()
	sum.print(os.Stdout, time.Since(start))
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.ExitCode())
	case err != nil:
		fmt.Fprintln(os.Stderr, "testrun: go test:", err)
		os.Exit(1)
	}
}

// minParallel is the fewest test binaries run at once: most of the suite waits (on Docker,
// buildkitd, subprocesses and timeouts) rather than computes, so on a 2-core machine four at
// once take half the time of go test's default of one per core.
const minParallel = 4

// goTestArgs adds ./... when args name no package (a package argument is one that is not a flag
// and does not follow a flag that takes a value), and -p when they set none and the machine has
// fewer than minParallel cores.
func goTestArgs(args []string, cpus int) []string {
	out := slices.Clone(args)
	pkgs, parallel := false, false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			pkgs = true
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		parallel = parallel || name == "p"
		if !hasValue && takesValue[name] {
			i++
		}
	}
	if !parallel && cpus < minParallel {
		out = append([]string{"-p", strconv.Itoa(minParallel)}, out...)
	}
	if !pkgs {
		out = append(out, "./...")
	}
	return out
}

// takesValue are the go test and build flags that take their value as the next word.
var takesValue = map[string]bool{"run": true, "skip": true, "bench": true, "benchtime": true, "count": true,
	"timeout": true, "cpu": true, "parallel": true, "p": true, "tags": true, "coverprofile": true,
	"covermode": true, "coverpkg": true, "ldflags": true, "gcflags": true, "o": true, "exec": true,
	"shuffle": true, "fuzz": true, "fuzztime": true, "list": true, "outputdir": true, "cpuprofile": true,
	"memprofile": true, "blockprofile": true, "mutexprofile": true, "trace": true, "vet": true, "mod": true,
	"modfile": true, "overlay": true, "pkgdir": true, "toolexec": true, "asmflags": true, "C": true}

// event is one line of `go test -json` (test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// skipped is a test that skipped, and the message it gave.
type skipped struct{ Package, Test, Reason string }

// summary is what a run leaves to say at its end.
type summary struct {
	skips    []skipped
	packages map[string]float64 // seconds each package's tests took
	failed   int                // tests that failed
}

// follow reads the event stream r, prints to w what go test prints without -json (package lines,
// the output of failed tests, build errors), and returns the summary.
func follow(r io.Reader, w io.Writer) summary {
	sum := summary{packages: map[string]float64{}}
	output := map[string][]string{} // per package and test, its lines so far
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(w, sc.Text()) // not an event: go's own words
			continue
		}
		key := e.Package + " " + e.Test
		switch {
		case e.Action == "build-output":
			io.WriteString(w, e.Output)
		case e.Action == "output" && e.Test == "":
			if o := e.Output; strings.HasPrefix(o, "ok ") || strings.HasPrefix(o, "FAIL") || strings.HasPrefix(o, "?") || strings.HasPrefix(o, "panic") {
				io.WriteString(w, o)
			}
		case e.Action == "output":
			output[key] = append(output[key], e.Output)
		case e.Test != "" && e.Action == "skip":
			sum.skips = append(sum.skips, skipped{e.Package, e.Test, reason(output[key])})
			delete(output, key)
		case e.Test != "" && e.Action == "fail":
			sum.failed++
			io.WriteString(w, strings.Join(output[key], ""))
			delete(output, key)
		case e.Test != "" && e.Action == "pass":
			delete(output, key)
		case e.Test == "" && (e.Action == "pass" || e.Action == "fail"):
			sum.packages[e.Package] = e.Elapsed
		}
	}
	return sum
}

// message is a line t.Skip, t.Log and the like start: indented, naming the file and line.
var message = regexp.MustCompile(`^\s+\S+\.go:\d+: `)

// reason is the last message a skipped test printed (its t.Skip), on one line.
func reason(lines []string) string {
	start := -1
	for i, l := range lines {
		if message.MatchString(l) {
			start = i
		}
	}
	if start < 0 {
		return "(no reason given)"
	}
	var parts []string
	for _, l := range lines[start:] {
		if strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "=== ") {
			break
		}
		parts = append(parts, strings.TrimSpace(l))
	}
	return strings.Join(parts, " ")
}

// print ends the run: the skipped tests with their reasons, and the slowest packages.
func (s summary) print(w io.Writer, took time.Duration) {
	fmt.Fprintf(w, "\n%d package(s) in %s", len(s.packages), took.Round(time.Second))
	type pkg struct {
		name string
		secs float64
	}
	var pkgs []pkg
	for name, secs := range s.packages {
		pkgs = append(pkgs, pkg{name, secs})
	}
	slices.SortFunc(pkgs, func(a, b pkg) int {
		if a.secs != b.secs {
			if a.secs > b.secs {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	if len(pkgs) > 0 {
		var slow []string
		for _, p := range pkgs[:min(len(pkgs), 5)] {
			slow = append(slow, fmt.Sprintf("%s %.1fs", shortName(p.name), p.secs))
		}
		fmt.Fprintf(w, "; slowest: %s", strings.Join(slow, ", "))
	}
	fmt.Fprintln(w)
	if s.failed > 0 {
		fmt.Fprintf(w, "%d test(s) failed (their output is above)\n", s.failed)
	}
	if len(s.skips) == 0 {
		fmt.Fprintln(w, "no test skipped")
		return
	}
	fmt.Fprintf(w, "%d test(s) skipped:\n", len(s.skips))
	for _, sk := range s.skips {
		fmt.Fprintf(w, "  %s %s: %s\n", shortName(sk.Package), sk.Test, sk.Reason)
	}
}

// shortName drops the module path, which every package of the run shares.
func shortName(pkg string) string {
	return strings.TrimPrefix(strings.TrimPrefix(pkg, "github.com/runtimebuild/runtimebuild"), "/")
}
