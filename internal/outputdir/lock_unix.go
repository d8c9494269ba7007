//go:build unix

package outputdir

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes f's lock, waiting for it.
func lockFile(f *os.File, exclusive bool) error {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	return flock(f, how)
}

// tryLock takes f's exclusive lock or returns ErrLocked at once.
func tryLock(f *os.File) error {
	err := flock(f, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return ErrLocked
	}
	return err
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
