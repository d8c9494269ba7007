package buildctx

import (
	"archive/tar"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
)

// Entry is one member of the archive.
type Entry struct {
	Name     string // slash path inside the archive
	Type     byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	Mode     int64  // normalised: 0755 for directories and executables, 0644 otherwise
	Size     int64
	Linkname string // symlink target, stored as it is and never followed
	Source   string // file to read the content from; empty when Data is used
	Data     []byte // generated content (the Dockerfile): never scanned for secrets
	// AllowSecrets marks a file the allow list of GuardSecrets allows: Write does not scan its content.
	AllowSecrets bool
}

// Scan turns selected paths (relative to root) into entries with the modes, sizes and link
// targets found on disk. Paths that no longer exist (deleted in the work tree) are skipped;
// directories (git submodules) and special files are skipped with a warning, and so are
// links pointing outside root noted.
func Scan(root string, paths []string) (entries []Entry, warnings []string, err error) {
	for _, p := range paths {
		full := filepath.Join(root, filepath.FromSlash(p))
		fi, err := os.Lstat(full)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", p, err)
		}
		switch mode := fi.Mode(); {
		case mode.IsRegular():
			entries = append(entries, Entry{Name: p, Type: tar.TypeReg, Mode: fileMode(mode), Size: fi.Size(), Source: full})
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				return nil, nil, fmt.Errorf("reading link %s: %w", p, err)
			}
			if escapes(p, filepath.ToSlash(target)) {
				warnings = append(warnings, fmt.Sprintf("symlink %s points outside the source (%s); it is stored as a link and will dangle in the image", p, target))
			}
			entries = append(entries, Entry{Name: p, Type: tar.TypeSymlink, Mode: 0o777, Linkname: target})
		case mode.IsDir():
			warnings = append(warnings, fmt.Sprintf("%s is a directory in git's index (a submodule?); not packed", p))
		default:
			warnings = append(warnings, fmt.Sprintf("%s is not a regular file or link (%s); not packed", p, mode.Type()))
		}
	}
	return entries, warnings, nil
}

func fileMode(m fs.FileMode) int64 {
	if m&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

// Replace puts e in place of the entry of the same name, or adds it.
func Replace(entries []Entry, e Entry) (out []Entry, replaced bool) {
	for i := range entries {
		if entries[i].Name == e.Name {
			out = append([]Entry(nil), entries...)
			out[i] = e
			return out, true
		}
	}
	return append(append([]Entry(nil), entries...), e), false
}

// Complete adds an entry for every parent directory and sorts the entries by name, so that
// the archive lists each directory before what it holds and the order never depends on the disk.
func Complete(entries []Entry) []Entry {
	dirs := map[string]bool{}
	for _, e := range entries {
		if e.Type == tar.TypeDir {
			dirs[e.Name] = true
		}
	}
	out := append([]Entry(nil), entries...)
	for _, e := range entries {
		for d := path.Dir(e.Name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			out = append(out, Entry{Name: d, Type: tar.TypeDir, Mode: 0o755})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names returns the set of the entries' names, whatever their type (directories too).
func Names(entries []Entry) map[string]bool {
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name] = true
	}
	return names
}
