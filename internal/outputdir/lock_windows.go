//go:build windows

package outputdir

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockFile takes f's lock, waiting for it.
func lockFile(f *os.File, exclusive bool) error {
	var flags uint32
	if exclusive {
		flags = windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	return windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, 1, 0, &windows.Overlapped{})
}

// tryLock takes f's exclusive lock or returns ErrLocked at once.
func tryLock(f *os.File) error {
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &windows.Overlapped{})
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING) {
		return ErrLocked
	}
	return err
}

// withDirLock runs fn. Windows cannot lock a directory; there a file in use cannot be
// removed either, so a cleaner fails on it instead of breaking the run that writes it.
func withDirLock(dir string, exclusive bool, fn func() error) error { return fn() }
