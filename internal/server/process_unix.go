//go:build unix

package server

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// processAlive reports whether a process with this PID exists (signal 0 probes without sending).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// defaultWorkDir is one directory per user below the temporary directory, so that users who
// share /tmp never share it.
func defaultWorkDir() string {
	return filepath.Join(os.TempDir(), "runtimebuild-serve-"+strconv.Itoa(os.Geteuid()))
}

// notOwned says why fi is not this user's, or "".
func notOwned(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Sprintf("owned by uid %d, not by this user (uid %d)", st.Uid, os.Geteuid())
	}
	return ""
}

// notPrivate says why fi, a directory, is not this user's alone, or "".
func notPrivate(fi fs.FileInfo) string {
	if problem := notOwned(fi); problem != "" {
		return problem
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Sprintf("mode %#o lets other users in", perm)
	}
	return ""
}

// holdDir locks the server's own directory for as long as it runs (flock on the directory:
// released by the kernel when the process dies, however it dies).
func holdDir(dir string) (io.Closer, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return f, nil
}

// claimOrphan takes the lock of the directory name below root, which must be a directory of
// this user; ok is false when a running server holds it or it is anything else. release
// drops the lock once the directory is gone.
func claimOrphan(root *os.Root, _ string, name string) (release func(), ok bool) {
	before, err := root.Lstat(name)
	if err != nil || !before.IsDir() || notOwned(before) != "" {
		return nil, false
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, false
	}
	if after, err := f.Stat(); err != nil || !os.SameFile(before, after) {
		f.Close()
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}
