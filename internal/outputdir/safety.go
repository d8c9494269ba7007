package outputdir

import (
	"os"
	"path/filepath"
	"strings"
)

// Unsafe says why an output directory is refused.
type Unsafe int

// The reasons an output directory is refused.
const (
	IsSource Unsafe = iota + 1 // it is the source directory itself
	IsRoot                     // cleaning it would clean the root directory
	IsHome                     // cleaning it would clean the home directory
)

// UnsafeError is an output directory that would swallow the source or, when cleaning, is too
// precious to clean.
type UnsafeError struct {
	Dir    string
	Reason Unsafe
}

func (e *UnsafeError) Error() string {
	switch e.Reason {
	case IsSource:
		return e.Dir + " is the source directory itself"
	case IsRoot:
		return e.Dir + " is the root directory"
	}
	return e.Dir + " is the home directory"
}

// Check refuses an output directory that is the source directory, or (when cleaning) the root
// or the home directory; symbolic links are followed as far as the paths exist.
func Check(sourceDir, dir string, cleaning bool) error {
	src, err := filepath.Abs(sourceDir)
	if err != nil {
		return err
	}
	out, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	src, out = resolve(src), resolve(out)
	if out == src {
		return &UnsafeError{Dir: dir, Reason: IsSource}
	}
	if !cleaning {
		return nil
	}
	if out == string(filepath.Separator) {
		return &UnsafeError{Dir: dir, Reason: IsRoot}
	}
	if home, _ := os.UserHomeDir(); home != "" && out == resolve(home) {
		return &UnsafeError{Dir: dir, Reason: IsHome}
	}
	return nil
}

// Within returns dir as a slash path relative to root when dir lies inside root.
func Within(root, dir string) (string, bool) {
	r, err1 := filepath.Abs(root)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return "", false
	}
	rel, err := filepath.Rel(resolve(r), resolve(d))
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// resolve follows symbolic links in the part of p that exists.
func resolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	dir, base := filepath.Split(p)
	if dir == "" || filepath.Clean(dir) == p {
		return p
	}
	return filepath.Join(resolve(filepath.Clean(dir)), base)
}
