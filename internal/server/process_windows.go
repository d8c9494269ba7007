package server

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// processAlive reports whether a process with this PID exists: it can be opened for a query.
func processAlive(pid int) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return errors.Is(err, windows.ERROR_ACCESS_DENIED)
	}
	var code uint32
	defer windows.CloseHandle(h)
	if windows.GetExitCodeProcess(h, &code) != nil {
		return true
	}
	return code == 259 // STILL_ACTIVE
}

// defaultWorkDir is below the temporary directory, which Windows keeps per user.
func defaultWorkDir() string {
	return filepath.Join(os.TempDir(), "runtimebuild-serve")
}

// notPrivate is always "": the per-user temporary directory's ACL keeps other users out.
func notPrivate(fs.FileInfo) string { return "" }

// dirHandle is an open directory handle that does not share deletion: while it is open, no
// other server can claim the directory.
type dirHandle windows.Handle

func (h dirHandle) Close() error { return windows.CloseHandle(windows.Handle(h)) }

func openDir(dir string, share uint32) (dirHandle, error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, err
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ, share, nil, windows.OPEN_EXISTING,
		windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	return dirHandle(h), err
}

// holdDir holds the server's own directory open, sharing read and write but not deletion,
// for as long as it runs; the handle goes when the process dies.
func holdDir(dir string) (io.Closer, error) {
	return openDir(dir, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE)
}

// claimOrphan opens the directory name below base exclusively: that fails while a running
// server holds it. release closes the handle, which must happen before the removal.
func claimOrphan(root *os.Root, base, name string) (release func(), ok bool) {
	fi, err := root.Lstat(name)
	if err != nil || !fi.IsDir() {
		return nil, false
	}
	h, err := openDir(filepath.Join(base, name), 0)
	if err != nil {
		return nil, false
	}
	h.Close() // nobody held it; Windows cannot remove what is open
	return func() {}, true
}
