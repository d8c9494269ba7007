//go:build unix

package outputdir

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes f's lock, waiting for it. On a file system without locks it does nothing,
// and tryLock then finds everything in use: cleaning keeps what it cannot prove unused.
func lockFile(f *os.File, exclusive bool) error {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := flock(f, how); err != nil && !noLocks(err) {
		return err
	}
	return nil
}

// tryLock takes f's exclusive lock or returns ErrLocked at once.
func tryLock(f *os.File) error {
	err := flock(f, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) || noLocks(err) {
		return ErrLocked
	}
	return err
}

// noLocks tells the errors of a file system that has no flock.
func noLocks(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOLCK) || errors.Is(err, unix.EINVAL)
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// withDirLock runs fn holding the lock of the directory itself: shared to add a file,
// exclusive to clean, so that a cleaner never sees a file between its creation and its lock.
func withDirLock(dir string, exclusive bool, fn func() error) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close() // drops the lock
	if err := lockFile(d, exclusive); err != nil {
		return err
	}
	return fn()
}
