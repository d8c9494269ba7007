package magemain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a writer the test reads while the code under test writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitForLines waits (bounded) until out holds n lines.
func waitForLines(t *testing.T, out *syncBuffer, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if out.String() != "" && len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited for %d lines, got:\n%s", n, out.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestEachTickOfAFirstRunSaysWhatIsBuiltAndHowFar plays a first run: the go command downloads
// two modules, lists three stale packages (the magefiles one among them) and compiles two;
// at every tick in between, one line says how far it got.
func TestEachTickOfAFirstRunSaysWhatIsBuiltAndHowFar(t *testing.T) {
	ticks := make(chan time.Time)
	step := make(chan struct{})  // the fake go command goes on when the test says so
	wrote := make(chan struct{}) // and says when it has written a line
	var calls [][]string
	run := func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		calls = append(calls, args)
		switch args[0] {
		case "list":
			fmt.Fprintln(stderr, "go: downloading github.com/moby/buildkit v0.27.1")
			wrote <- struct{}{}
			<-step
			fmt.Fprint(stderr, "go: downloading github.com/docker/cli v29.7.2+incompatible\n")
			wrote <- struct{}{}
			<-step
			fmt.Fprintln(stdout, "github.com/moby/buildkit/client")
			fmt.Fprintln(stdout, "github.com/runtimebuild/runtimebuild/magefiles/targets")
			fmt.Fprintln(stdout, "github.com/runtimebuild/runtimebuild/magefiles")
		case "build":
			fmt.Fprintln(stderr, "github.com/moby/buildkit/client")
			wrote <- struct{}{}
			<-step
			fmt.Fprintln(stderr, "github.com/runtimebuild/runtimebuild/magefiles/targets")
		}
		return nil
	}
	out := &syncBuffer{}
	w := Warm{Run: run, Out: out, Tags: "mage", Pkgs: []string{"./magefiles", "github.com/magefile/mage/mg"},
		Ticker: func() (<-chan time.Time, func()) { return ticks, func() {} }}
	done := make(chan error)
	go func() {
		n, err := w.Do(context.Background())
		if n != 2 {
			err = fmt.Errorf("Do compiled %d packages, want 2 (%v)", n, err)
		}
		done <- err
	}()

	<-wrote
	ticks <- time.Time{}
	waitForLines(t, out, 1)
	step <- struct{}{}
	<-wrote
	ticks <- time.Time{}
	waitForLines(t, out, 2)
	step <- struct{}{}
	<-wrote
	waitForLines(t, out, 4) // downloaded, and what is to build
	ticks <- time.Time{}
	waitForLines(t, out, 5)
	step <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []string{
		"[runtime-build] downloading the targets' modules: 1 so far (github.com/moby/buildkit v0.27.1)",
		"[runtime-build] downloading the targets' modules: 2 so far (github.com/docker/cli v29.7.2+incompatible)",
		"[runtime-build] downloaded 2 module(s)",
		"[runtime-build] compiling the targets: 2 package(s) to build",
		"[runtime-build] compiling the targets: 1 of 2 packages (github.com/moby/buildkit/client)",
		"[runtime-build] compiled 2 package(s)",
	}
	if got := strings.Split(strings.TrimSpace(out.String()), "\n"); !slices.Equal(got, want) {
		t.Errorf("the lines are\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if b := calls[1]; !slices.Equal(b, []string{"build", "-v", "-tags", "mage", "github.com/moby/buildkit/client", "github.com/runtimebuild/runtimebuild/magefiles/targets"}) {
		t.Errorf("the build was %q: it must leave out the magefiles package, main without a main function", b)
	}
}

func TestEverythingInTheBuildCacheCompilesNothing(t *testing.T) {
	var calls int
	run := func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		calls++
		fmt.Fprintln(stdout, "github.com/runtimebuild/runtimebuild/magefiles") // mage writes its main function: always "stale"
		return nil
	}
	out := &syncBuffer{}
	w := Warm{Run: run, Out: out, Ticker: func() (<-chan time.Time, func()) { return nil, func() {} }}
	if n, err := w.Do(context.Background()); n != 0 || err != nil || calls != 1 || out.String() != "" {
		t.Fatalf("err %v, %d go commands, printed %q; want one list and silence", err, calls, out.String())
	}
}

func TestAFailedCompileShowsWhatTheGoCommandSaid(t *testing.T) {
	run := func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		if args[0] == "list" {
			fmt.Fprintln(stdout, "example.com/broken")
			return nil
		}
		fmt.Fprintln(stderr, "# example.com/broken\nbroken.go:3:1: syntax error")
		return errors.New("exit status 1")
	}
	out := &syncBuffer{}
	w := Warm{Run: run, Out: out, Ticker: func() (<-chan time.Time, func()) { return nil, func() {} }}
	if _, err := w.Do(context.Background()); err == nil || !strings.Contains(out.String(), "broken.go:3:1: syntax error") {
		t.Fatalf("err %v, printed %q", err, out.String())
	}
}

// TestWatchSaysLinkingUntilTheProgramIsWritten: mage links silently; the watch prints at each
// tick until mage's compiled program appears, then stops by itself.
func TestWatchSaysLinkingUntilTheProgramIsWritten(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "compiled")
	ticks := make(chan time.Time)
	start := time.Now().Add(-time.Minute)
	clock := func() time.Time { return start.Add(10 * time.Second) }
	out := &syncBuffer{}
	ended := make(chan struct{})
	go func() {
		Watch(out, exe, start, func() (<-chan time.Time, func()) { return ticks, func() {} }, clock, nil)
		close(ended)
	}()
	ticks <- time.Time{}
	waitForLines(t, out, 2)
	if err := os.WriteFile(exe, []byte("program"), 0o755); err != nil {
		t.Fatal(err)
	}
	ticks <- time.Time{}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch goes on after the program was written")
	}
	if got := out.String(); got != "[runtime-build] linking the targets into one program\n[runtime-build] linking the targets into one program (10s)\n" {
		t.Errorf("printed %q", got)
	}
}

func TestProgramIsWhatMageCompiles(t *testing.T) {
	exeName := func(dir string, files []string) (string, error) {
		return filepath.Join(dir, strings.Join(files, "+")), nil
	}
	names := func() ([]string, error) { return []string{"magefile.go"}, nil }
	for _, tc := range []struct {
		args     []string
		exe      string
		compiles bool
	}{
		{[]string{"context"}, "/cache/magefile.go", true},
		{[]string{"-v", "status", "b-1"}, "/cache/magefile.go", true},
		{[]string{"-goos", "linux", "-compile", "/out/rb"}, "/out/rb", true},
		{[]string{"-l"}, "", false},
		{[]string{"-h", "upload"}, "", false},
		{[]string{"-version"}, "", false},
	} {
		exe, compiles, err := Program(tc.args, "/cache", exeName, names)
		if err != nil || exe != tc.exe || compiles != tc.compiles {
			t.Errorf("Program(%q) = %q, %v, %v; want %q, %v", tc.args, exe, compiles, err, tc.exe, tc.compiles)
		}
	}
}

func TestChangedSinceSeesANewerSourceButNotATest(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	for _, f := range []string{"go.mod", "internal/x/x.go", "internal/x/x_test.go", "testdata/y.go", ".git/z.go", "README.md"} {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o644)
		os.Chtimes(p, old, old)
	}
	compiled := old.Add(time.Minute)
	if ChangedSince(dir, compiled) {
		t.Fatal("nothing changed since the compile, yet ChangedSince says so")
	}
	for _, f := range []string{"internal/x/x_test.go", "testdata/y.go", ".git/z.go", "README.md"} {
		os.Chtimes(filepath.Join(dir, f), time.Now(), time.Now())
	}
	if ChangedSince(dir, compiled) {
		t.Fatal("a test, testdata, .git or a README changed the targets' program")
	}
	os.Chtimes(filepath.Join(dir, "internal/x/x.go"), time.Now(), time.Now())
	if !ChangedSince(dir, compiled) {
		t.Fatal("a changed source file went unseen")
	}
}

func TestWatchEndsWhenNoLinkCameAfterAll(t *testing.T) {
	start := time.Now()
	ticks := make(chan time.Time, 1)
	ticks <- time.Time{}
	out := &syncBuffer{}
	ended := make(chan struct{})
	go func() {
		later := func() time.Time { return start.Add(WatchAtMost) }
		Watch(out, filepath.Join(t.TempDir(), "never-written"), start, func() (<-chan time.Time, func()) { return ticks, func() {} }, later, nil)
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch goes on past WatchAtMost")
	}
	if got := out.String(); got != "[runtime-build] linking the targets into one program\n" {
		t.Errorf("printed %q", got)
	}
}
