//go:build mage

// runtimebuild: turn a checkout into a container image on the Runtime API.
package main

import (
	//mage:import
	"github.com/runtimebuild/runtimebuild/magefiles/targets"
)

// Default is the target run by a bare `mage`.
var Default = targets.Context
