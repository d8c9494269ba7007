//go:build mage

// A repository that has an `all` target of its own imports the runtimebuild targets under a
// namespace, as the README shows: they become rb:context, rb:all, rb:status, ...
package main

import (
	"fmt"

	//mage:import rb
	_ "github.com/runtimebuild/runtimebuild/magefiles/targets"
)

// All is this repository's own pipeline.
func All() { fmt.Println("the team's own all") }
