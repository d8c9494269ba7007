package buildctx

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// NormalizePath turns a path from git, a directory walk or an archive into the form archive
// entries use: slash-separated, relative, clean, with no "." or ".." element. It refuses what
// cannot be stored safely rather than guessing.
func NormalizePath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("empty path")
	}
	if strings.ContainsRune(p, 0) || !utf8.ValidString(p) {
		return "", fmt.Errorf("path %q: not valid UTF-8 text", p)
	}
	p = strings.ReplaceAll(p, `\`, "/")
	if strings.HasPrefix(p, "/") || (len(p) > 1 && p[1] == ':') {
		return "", fmt.Errorf("path %q is absolute", p)
	}
	clean := path.Clean(p)
	if clean == "." {
		return "", fmt.Errorf("path %q names the root", p)
	}
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("path %q leaves the root", p)
	}
	return clean, nil
}

// escapes reports whether a symbolic link at name (relative to the root) pointing at target
// resolves outside the root.
func escapes(name, target string) bool {
	if path.IsAbs(target) {
		return true
	}
	resolved := path.Join(path.Dir(name), target)
	return resolved == ".." || strings.HasPrefix(resolved, "../")
}
