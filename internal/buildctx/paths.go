package buildctx

import (
	"fmt"
	"path"
	"strings"

	"github.com/runtimebuild/runtimebuild/internal/targz"
)

// NormalizePath turns a path from git, a directory walk or an archive into the form archive
// entries use: slash-separated, relative, clean, with no "." or ".." element; every other byte
// is part of the name (a backslash, a colon, bytes that are not UTF-8). It is the archive
// reader's own rule (targz.CleanName), so that what is packed is what a reader accepts.
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

// windowsCannotHold says why Windows cannot hold a file of that slash path ("" when it can):
// a character its file systems refuse in a name, a name ending in a dot or a space, or a
// device name (CON, NUL, COM1, ...) with or without an extension. git for Windows does not
// check such a file out, so it is missing from the work tree: it is said, never dropped in
// silence.
func windowsCannotHold(p string) string {
	for _, el := range strings.Split(p, "/") {
		for i := 0; i < len(el); i++ {
			if c := el[i]; c < 0x20 || strings.IndexByte(`<>:"\|?*`, c) >= 0 {
				return fmt.Sprintf("%q is not allowed in a Windows file name", string(c))
			}
		}
		if strings.HasSuffix(el, ".") || strings.HasSuffix(el, " ") {
			return "a Windows file name cannot end in a dot or a space"
		}
		base, _, _ := strings.Cut(el, ".")
		switch strings.ToUpper(strings.TrimRight(base, " ")) {
		case "CON", "PRN", "AUX", "NUL",
			"COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
			"LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9":
			return fmt.Sprintf("%s is a device name on Windows", el)
		}
	}
	return ""
}
