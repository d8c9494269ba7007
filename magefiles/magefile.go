//go:build mage

// runtimebuild: turn a checkout into a container image on the Runtime API.
package main

//mage:multiline // -h keeps the line breaks of a target's doc comment

import (
	//mage:import
	"github.com/runtimebuild/runtimebuild/magefiles/targets"
)

// Default is the target run by a bare `mage`.
var Default = targets.Context
