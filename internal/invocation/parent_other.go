//go:build !linux

package invocation

// parentArgs0 is unknown where there is no /proc: a binary started by mage then says `go tool
// mage`, the way the README runs it.
func parentArgs0() string { return "" }
