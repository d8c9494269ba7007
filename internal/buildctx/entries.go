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
	"strings"
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
	return scan(root, paths, func(string, Exclusion) {})
}

// Scan turns the selected files into entries as Scan does, and records in the selection why
// a file is not among them. On a system that cannot hold some of the names git tracks
// (Windows: "a:b.txt"), those files are not in the work tree: one warning names them.
func (s *Selection) Scan(root string) (entries []Entry, warnings []string, err error) {
	return s.scan(root, hostCannotHold)
}

// scan is Scan with the names the system cannot hold told by cannotHold.
func (s *Selection) scan(root string, cannotHold func(string) string) (entries []Entry, warnings []string, err error) {
	paths := make([]string, 0, len(s.Files))
	var cannot []string
	for _, p := range s.Files {
		if why := cannotHold(p); why != "" {
			s.drop(p, Exclusion{Reason: HostCannotHold, Detail: why})
			cannot = append(cannot, fmt.Sprintf("%q (%s)", p, why))
			continue
		}
		paths = append(paths, p)
	}
	if len(cannot) > 0 {
		shown := cannot[:min(len(cannot), 5)]
		if len(cannot) > len(shown) {
			shown = append(shown, fmt.Sprintf("and %d more", len(cannot)-len(shown)))
		}
		warnings = append(warnings, fmt.Sprintf("%d file(s) git tracks cannot exist on this system and are not packed: %s; pack on Linux or macOS to include them",
			len(cannot), strings.Join(shown, ", ")))
	}
	entries, more, err := scan(root, paths, s.drop)
	s.index()
	return entries, append(warnings, more...), err
}

func scan(root string, paths []string, drop func(string, Exclusion)) (entries []Entry, warnings []string, err error) {
	for _, p := range paths {
		full := filepath.Join(root, filepath.FromSlash(p))
		fi, err := os.Lstat(full)
		if errors.Is(err, fs.ErrNotExist) {
			drop(p, Exclusion{Reason: Missing})
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
			drop(p, Exclusion{Reason: NotRegular, Detail: "a directory in git's index (a submodule?)"})
			warnings = append(warnings, fmt.Sprintf("%s is a directory in git's index (a submodule?); not packed", p))
		default:
			drop(p, Exclusion{Reason: NotRegular, Detail: describeMode(mode)})
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
