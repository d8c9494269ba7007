package buildctx

import (
	"path"
	"strings"

	"github.com/runtimebuild/runtimebuild/internal/targz"
)

// NormalizePath turns a path from git, a directory walk or an archive into the form archive
// entries use: slash-separated, relative, clean, with no "." or ".." element. It refuses what
// cannot be stored safely rather than guessing. It is the archive reader's own rule
// (targz.CleanName), so that what is packed is what a reader accepts.
func NormalizePath(p string) (string, error) { return targz.CleanName(p) }

// escapes reports whether a symbolic link at name (relative to the root) pointing at target
// resolves outside the root.
func escapes(name, target string) bool {
	if path.IsAbs(target) {
		return true
	}
	resolved := path.Join(path.Dir(name), target)
	return resolved == ".." || strings.HasPrefix(resolved, "../")
}
