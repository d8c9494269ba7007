// Package outputdir keeps runs that share one output directory from breaking each other: each run
// holds a lock file naming the outputs it uses, temporary files are locked while they are
// written and renamed into place at the end, and cleaning removes only what no live run holds.
//
// Locks are advisory file locks (flock on unix, LockFileEx on windows): the kernel drops them
// when a process dies, so whatever a killed run left behind is unlocked and cleaned next time.
package outputdir

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The names this package gives its files in an output directory.
const (
	prefix     = ".runtimebuild-"
	tempSuffix = ".tmp"
	lockSuffix = ".lock"
	// tempPattern is the os.CreateTemp pattern of temporary files.
	tempPattern = prefix + "*" + tempSuffix
	lockPattern = prefix + "*" + lockSuffix
)

// ErrLocked is returned by the lock functions when another run holds the lock.
var ErrLocked = errors.New("locked by another run")

// Run is one run's hold on an output directory: a locked file listing the outputs the run
// uses, so that another run's cleaning leaves them alone. Close it when the run ends.
type Run struct {
	dir  string
	lock *os.File
}

// Open creates dir when needed and takes a new hold on it for this run.
func Open(dir string) (*Run, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := createLocked(dir, lockPattern)
	if err != nil {
		return nil, fmt.Errorf("locking %s for this run: %w", dir, err)
	}
	return &Run{dir: dir, lock: f}, nil
}

// Hold records that this run uses the files of dir with these base names (an archive it writes
// or uploads): cleaning by another run keeps them, and their result files, until Close.
func (r *Run) Hold(names ...string) error {
	var b bytes.Buffer
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, "\n/"+string(filepath.Separator)) {
			return fmt.Errorf("holding %q in %s: not a plain file name", n, r.dir)
		}
		b.WriteString(n + "\n")
	}
	return withDirLock(r.dir, false, func() error {
		if _, err := r.lock.Write(b.Bytes()); err != nil {
			return fmt.Errorf("holding %s in %s: %w", strings.Join(names, ", "), r.dir, err)
		}
		return nil
	})
}

// Close ends the hold: the lock file is removed and what it held may be cleaned again.
func (r *Run) Close() error {
	if r == nil || r.lock == nil {
		return nil
	}
	err := r.lock.Close() // unlocked, it holds nothing: a cleaner may remove it first
	if rerr := os.Remove(r.lock.Name()); err == nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = rerr
	}
	r.lock = nil
	return err
}

// Owned tells Clean which files of the directory a run of this tool wrote: for name, the files
// that go with it (a result file and its archive), or nothing when name is not ours.
type Owned func(dir, name string) []string

// Clean removes from dir what earlier runs of this tool left and no live run holds: the files
// owned reports, temporary files nobody is writing, lock files of runs that are gone. It
// returns the base names it removed, sorted.
func Clean(dir string, owned Owned) (removed []string, err error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	err = withDirLock(dir, true, func() error {
		list, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		held := map[string]bool{}
		var groups [][]string    // files that go together: removed all, or kept all
		for _, d := range list { // first the runs, so that everything they hold is known
			if name := d.Name(); d.Type().IsRegular() && isOurs(name, lockSuffix) {
				names, live, err := readLock(filepath.Join(dir, name))
				if err != nil {
					return err
				}
				for _, n := range names {
					held[n] = true
				}
				if !live {
					groups = append(groups, []string{name})
				}
			}
		}
		for _, d := range list {
			name := d.Name()
			switch {
			case !d.Type().IsRegular() || isOurs(name, lockSuffix):
			case isOurs(name, tempSuffix):
				if free, err := unlocked(filepath.Join(dir, name)); err != nil {
					return err
				} else if free {
					groups = append(groups, []string{name})
				}
			default:
				if files := owned(dir, name); len(files) > 0 {
					groups = append(groups, files)
				}
			}
		}
		for _, g := range groups {
			if anyHeld(held, g) {
				continue
			}
			for _, name := range g {
				err := os.Remove(filepath.Join(dir, name))
				if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				if err == nil {
					removed = append(removed, name)
				}
			}
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("cleaning %s: %w", dir, err)
	}
	sort.Strings(removed)
	return removed, nil
}

func isOurs(name, suffix string) bool {
	return strings.HasPrefix(name, prefix) && strings.HasSuffix(name, suffix) && len(name) > len(prefix)+len(suffix)
}

func anyHeld(held map[string]bool, files []string) bool {
	for _, f := range files {
		if held[f] {
			return true
		}
	}
	return false
}

// readLock reads a run's lock file: the names it holds, and whether its run is alive.
func readLock(path string) (names []string, live bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	switch err := tryLock(f); {
	case err == nil:
		return nil, false, nil // closed by the unlock when f closes
	case !errors.Is(err, ErrLocked):
		return nil, false, err
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		names = append(names, sc.Text())
	}
	return names, true, sc.Err()
}

// unlocked reports whether nobody holds the lock of the file at path.
func unlocked(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	switch err := tryLock(f); {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrLocked):
		return false, nil
	default:
		return false, err
	}
}
