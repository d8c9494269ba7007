//go:build !windows

package buildctx

// hostCannotHold is why this system cannot hold a file of that path: on Linux and macOS every
// name git tracks is a file name (only "/" and NUL are not name bytes, and git has neither).
func hostCannotHold(string) string { return "" }
