//go:build ignore

// Zero-install entry point: go run magefile.go <target> runs the targets of magefiles/ with no
// mage binary installed.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
