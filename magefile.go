//go:build ignore

// Zero-install entry point: go run magefile.go <target> runs the targets of magefiles/ with no
// mage binary installed.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/magefile/mage/mage"

	"github.com/runtimebuild/runtimebuild/internal/invocation"
	"github.com/runtimebuild/runtimebuild/internal/magemain"
)

func main() {
	args := magemain.Args(os.Args[1:])
	os.Setenv(invocation.EntryEnv, "go run magefile.go") // the targets name this command in their hints
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
	if gomod, err := os.ReadFile("go.mod"); err == nil && magemain.FirstRun(gomod, magemain.ModCache(os.Getenv)) {
		fmt.Fprintln(os.Stderr, "[runtime-build] compiling the targets (first run: about a minute to download and build their modules)")
	}
	os.Exit(mage.ParseAndRun(os.Stdout, os.Stderr, os.Stdin, args))
}
