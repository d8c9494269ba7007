// Package magemain holds what the zero-install entry point (magefile.go) does before it hands
// the command line to mage.
package magemain

import (
	"path/filepath"
	"strings"
)

// Args returns the command line with the output path of -compile made absolute. Mage builds
// from the magefiles/ directory, so a relative `-compile ./bin/runtimebuild` would otherwise
// land in magefiles/bin/ instead of where the user stands.
func Args(args []string) []string {
	out := append([]string(nil), args...)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			break // flags end at the first target name
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "compile" {
			continue
		}
		if hasValue {
			out[i] = a[:len(a)-len(value)] + abs(value)
		} else if i+1 < len(out) {
			out[i+1] = abs(out[i+1])
			i++
		}
	}
	return out
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
