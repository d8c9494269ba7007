//go:build mage

// A repository of another team that reuses the runtimebuild targets, as the README shows.
package main

import (
	//mage:import
	_ "github.com/runtimebuild/runtimebuild/magefiles/targets"
)
