//go:build ignore

// Zero-install entry point: go run magefile.go <target> runs the targets of magefiles/ with no
// mage binary installed.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/magefile/mage/mage"
	"github.com/magefile/mage/mg"

	"github.com/runtimebuild/runtimebuild/internal/magemain"
)

func main() {
	args := magemain.Args(os.Args[1:])
	os.Setenv(magemain.EntryEnv, "go run magefile.go") // the targets name this command in their hints
	if magemain.Compiles(args) {
		for _, kv := range magemain.CompileEnv(os.Getenv) {
			k, v, _ := strings.Cut(kv, "=")
			os.Setenv(k, v)
		}
		if !magemain.HasFlag(args, "ldflags") { // mage builds from files: stamp the revision ourselves
			if rev, err := exec.Command("git", "rev-parse", "--verify", "HEAD").Output(); err == nil {
				args = append([]string{"-ldflags=-X github.com/runtimebuild/runtimebuild/internal/version.revision=" + strings.TrimSpace(string(rev))}, args...)
			}
		}
	}
	stop := compileWithProgress(args)
	code := mage.ParseAndRun(os.Stdout, os.Stderr, os.Stdin, args)
	close(stop)
	os.Exit(code)
}

// compileWithProgress prints a line at least every magemain.Every while the targets are
// compiled: it downloads and compiles their packages itself, then watches mage link them. The
// channel it returns ends the watch.
func compileWithProgress(args []string) chan struct{} {
	stop := make(chan struct{})
	exe, compiles, err := magemain.Program(args, mg.CacheDir(), func(dir string, files []string) (string, error) {
		return mage.ExeName("go", dir, files)
	}, func() ([]string, error) { return mage.Magefiles(mage.MagefilesDirName, "", "", true) })
	if _, other := magemain.FlagValue(args, "d"); other || err != nil || !compiles {
		return stop // magefiles of another directory, mage says what is wrong, or compiles nothing
	}
	fi, statErr := os.Stat(exe)
	if statErr == nil && !magemain.Compiles(args) && !magemain.ChangedSince(".", fi.ModTime()) {
		return stop // compiled before from these sources: mage only checks that it is up to date
	}
	first := ""
	if gomod, err := os.ReadFile("go.mod"); err == nil && magemain.FirstRun(gomod, magemain.ModCache(os.Getenv)) {
		first = " (first run: their modules are downloaded and compiled once; a line every 10 s)"
	}
	if statErr != nil {
		fmt.Fprintf(os.Stderr, "%scompiling the targets%s\n", magemain.Prefix, first)
	}
	warm := magemain.Warm{
		Run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			cmd := exec.CommandContext(ctx, "go", args...)
			cmd.Stdout, cmd.Stderr = stdout, stderr
			cmd.Env = goEnv()
			return cmd.Run()
		},
		Out:    os.Stderr,
		Ticker: ticker,
		Tags:   "mage",
		Pkgs:   []string{"./" + mage.MagefilesDirName, "github.com/magefile/mage/mg"},
	}
	compiled, err := warm.Do(context.Background())
	if err != nil {
		return stop // mage's own compile fails the same way and says so
	}
	if statErr != nil || compiled > 0 { // mage links a program anew
		go magemain.Watch(os.Stderr, exe, time.Now(), ticker, time.Now, stop)
	}
	return stop
}

// goEnv is the environment mage compiles in: GOOS and GOARCH of -goos and -goarch, so that
// the packages compiled here are the ones mage's build finds in the cache.
func goEnv() []string {
	env := os.Environ()
	for _, f := range []string{"goos", "goarch"} {
		if v, ok := magemain.FlagValue(os.Args[1:], f); ok {
			env = append(env, strings.ToUpper(f)+"="+v)
		}
	}
	return env
}

func ticker() (<-chan time.Time, func()) {
	t := time.NewTicker(magemain.Every)
	return t.C, t.Stop
}
