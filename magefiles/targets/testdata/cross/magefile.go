//go:build mage

// The smallest magefile: TestCompileForAnotherPlatformWithSpacedFlags cross-compiles it to prove
// that the entry point hands -goos, -goarch and -compile to mage, without compiling every
// dependency of the targets for another platform (.ci/run's cross-builds prove that they build).
package main

// Hello does nothing.
func Hello() {}
