//go:build ignore

// Zero-install entry point: go run magefile.go <target> runs the targets of magefiles/ with no
// mage binary installed.
package main

import (
	"os"

	"github.com/magefile/mage/mage"

	"github.com/runtimebuild/runtimebuild/internal/magemain"
)

func main() {
	os.Exit(mage.ParseAndRun(os.Stdout, os.Stderr, os.Stdin, magemain.Args(os.Args[1:])))
}
