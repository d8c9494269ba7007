package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// makeWorkDir makes this server's directory below base, private and locked for the server's
// life. base must be this user's alone: then what dead servers left in it is removed first.
// Anything else (a link, another user's directory, one open to others: planted, perhaps) is
// left alone, and a fresh private directory beside it is used instead.
func makeWorkDir(base string, log Logger) (string, io.Closer, error) {
	root, problem, err := openPrivate(base)
	if err != nil {
		return "", nil, fmt.Errorf("preparing the work directory %s: %w", base, err)
	}
	var dir string
	if problem != "" {
		log.Warnf("the work directory %s is %s: using a new private directory beside it, and cleaning up nothing", base, problem)
		if dir, err = os.MkdirTemp(filepath.Dir(base), filepath.Base(base)+"-"); err != nil {
			return "", nil, fmt.Errorf("making a private work directory: %w", err)
		}
	} else {
		defer root.Close()
		removeOrphans(root, base, log)
		suffix := make([]byte, 6)
		rand.Read(suffix)
		name := strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(suffix)
		if err := root.Mkdir(name, 0o700); err != nil {
			return "", nil, fmt.Errorf("making the work directory: %w", err)
		}
		dir = filepath.Join(base, name)
	}
	hold, err := holdDir(dir)
	if err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	return dir, hold, nil
}

// openPrivate makes base if it is missing and opens it, unless it is not this user's private
// directory: problem then says why.
func openPrivate(base string) (root *os.Root, problem string, err error) {
	if err := os.MkdirAll(filepath.Dir(base), 0o700); err != nil {
		return nil, "", err
	}
	if err := os.Mkdir(base, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, "", err
	}
	before, err := os.Lstat(base)
	switch {
	case err != nil:
		return nil, "", err
	case before.Mode()&fs.ModeSymlink != 0:
		return nil, "a symbolic link", nil
	case !before.IsDir():
		return nil, "not a directory", nil
	}
	if problem := notPrivate(before); problem != "" {
		return nil, problem, nil
	}
	root, err = os.OpenRoot(base)
	if err != nil {
		return nil, "", err
	}
	if after, err := root.Stat("."); err != nil || !os.SameFile(before, after) {
		root.Close()
		return nil, "replaced while it was opened", nil
	}
	return root, "", nil
}

// removeOrphans deletes the directories of servers that died without cleaning up: named
// after their process ID, locked by no running server, their process gone. Only directories
// of this user in base, through root: nothing outside base is ever touched.
func removeOrphans(root *os.Root, base string, log Logger) {
	d, err := root.Open(".")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, name := range names {
		pidText, _, _ := strings.Cut(name, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 {
			continue
		}
		release, ok := claimOrphan(root, base, name)
		if !ok {
			continue
		}
		if processAlive(pid) { // a server that does not lock (an older version) may still run
			release()
			continue
		}
		err = root.RemoveAll(name)
		release()
		if err == nil {
			log.Infof("removed the build files of an earlier server (process %d)", pid)
		}
	}
}

// removeWorkDir releases the lock on the work directory and removes it.
func (s *Server) removeWorkDir() error {
	s.holdOnce.Do(func() { s.hold.Close() }) // first: Windows removes nothing still open
	return os.RemoveAll(s.opts.WorkDir)
}
