package outputdir

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Temp is a file being written in an output directory. It stays locked while open, so that
// no run's cleaning removes it; Commit renames it into place, Discard removes it.
type Temp struct {
	*os.File
	dir  string
	done bool
}

// CreateTemp creates a locked temporary file in dir.
func CreateTemp(dir string) (*Temp, error) {
	f, err := createLocked(dir, tempPattern)
	if err != nil {
		return nil, fmt.Errorf("creating a temporary file in %s: %w", dir, err)
	}
	return &Temp{File: f, dir: dir}, nil
}

// createLocked creates a file named by pattern in dir and locks it, under the directory's
// shared lock so that no cleaning sees it unlocked.
func createLocked(dir, pattern string) (*os.File, error) {
	var f *os.File
	err := withDirLock(dir, false, func() error {
		var err error
		if f, err = os.CreateTemp(dir, pattern); err != nil {
			return err
		}
		if err := lockFile(f, true); err != nil {
			f.Close()
			os.Remove(f.Name())
			return err
		}
		return nil
	})
	return f, err
}

// Commit makes the written file dir/name, mode 0644, flushed to disk: the name appears
// complete or not at all.
func (t *Temp) Commit(name string) error {
	path := filepath.Join(t.dir, name)
	if err := t.Chmod(0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := t.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if runtime.GOOS == "windows" { // an open file cannot be renamed there
		if err := t.File.Close(); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := os.Rename(t.Name(), path); err != nil { // elsewhere while locked: never unlocked under its temporary name
		return fmt.Errorf("renaming %s to %s: %w", filepath.Base(t.Name()), path, err)
	}
	t.done = true
	if runtime.GOOS != "windows" {
		if err := t.File.Close(); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}

// Discard closes and removes the file unless Commit succeeded; it is safe to defer.
func (t *Temp) Discard() {
	if t.done {
		return
	}
	t.done = true
	t.File.Close()
	os.Remove(t.Name())
}

// WriteFile writes data to path through a temporary file renamed into place.
func WriteFile(path string, data []byte) error {
	t, err := CreateTemp(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer t.Discard()
	if _, err := t.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return t.Commit(filepath.Base(path))
}
