//go:build unix

package server

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process with this PID exists (signal 0 probes without sending).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
