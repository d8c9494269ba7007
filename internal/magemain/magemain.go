// Package magemain holds what the zero-install entry point (magefile.go) does before it hands
// the command line to mage.
package magemain

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
)

// EntryEnv names the variable the entry point sets to the command the user typed, for the
// targets' hints: invocation.EntryEnv, spelled here so that magefile.go does not import
// invocation (and through config the net stack and cgo), which go run compiles in silence
// before the entry point can print a word. A test keeps the two equal.
const EntryEnv = "RUNTIMEBUILD_ENTRY"

// valueFlags are mage's flags that take a value, as `-goos linux` or `-goos=linux`.
var valueFlags = map[string]bool{"compile": true, "goos": true, "goarch": true, "ldflags": true, "gocmd": true,
	"d": true, "w": true, "t": true, "install": true}

// Args returns the command line with the output path of -compile made absolute. Mage builds
// from the magefiles/ directory, so a relative `-compile ./bin/runtimebuild` would otherwise
// land in magefiles/bin/ instead of where the user stands. Mage's flags come before the first
// target, with their values joined by = or as the next word.
func Args(args []string) []string {
	out := append([]string(nil), args...)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			break // flags end at the first target name
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !valueFlags[name] || hasValue && name != "compile" {
			continue
		}
		switch {
		case hasValue:
			out[i] = a[:len(a)-len(value)] + abs(value)
		case i+1 < len(out):
			if name == "compile" {
				out[i+1] = abs(out[i+1])
			}
			i++ // the value is no target name
		}
	}
	return out
}

// Compiles reports whether the command line asks for -compile.
func Compiles(args []string) bool { return HasFlag(args, "compile") }

// CompileEnv is what -compile needs in the environment: CGO off, for the static binary the
// README promises, unless the user chose CGO_ENABLED.
func CompileEnv(getenv func(string) string) []string {
	if getenv("CGO_ENABLED") != "" {
		return nil
	}
	return []string{"CGO_ENABLED=0"}
}

// HasFlag reports whether mage's flag name is on the command line (with its value, when it takes one).
func HasFlag(args []string, name string) bool {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			return false
		}
		n, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if valueFlags[n] && !hasValue {
			if i+1 == len(args) {
				return false // mage will say that the value is missing
			}
			i++
		}
		if n == name {
			return true
		}
	}
	return false
}

// FirstRun reports whether the modules go.mod requires directly are missing from the module
// cache: then mage's compile downloads and builds them all, which takes about a minute.
func FirstRun(gomod []byte, modCache string) bool {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	inRequire := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "require (":
			inRequire = true
			continue
		case line == ")":
			inRequire = false
			continue
		case strings.HasPrefix(line, "require "):
			line = strings.TrimPrefix(line, "require ")
		case !inRequire:
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 || strings.HasPrefix(fields[0], "//") {
			continue
		}
		if _, err := os.Stat(filepath.Join(modCache, escape(fields[0])+"@"+fields[1])); err != nil {
			return true
		}
	}
	return false
}

// escape is a module path as the module cache spells it: upper case letters as !lower.
func escape(path string) string {
	var b strings.Builder
	for _, r := range path {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return filepath.FromSlash(b.String())
}

// ModCache is GOMODCACHE as the go command chooses it by default.
func ModCache(getenv func(string) string) string {
	if c := getenv("GOMODCACHE"); c != "" {
		return c
	}
	gopath := getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	return filepath.Join(filepath.SplitList(gopath)[0], "pkg", "mod")
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// Program says where mage puts the program it compiles for args and whether it compiles one:
// -compile's path, else the file of mage's cache named after the magefiles (mage.ExeName),
// which exists once they have been compiled. -l, -h and mage's other commands compile nothing.
// names are the magefiles (mage.Magefiles), asked for only when needed.
func Program(args []string, cacheDir string, exeName func(cacheDir string, files []string) (string, error), names func() ([]string, error)) (string, bool, error) {
	if out, ok := FlagValue(args, "compile"); ok {
		return out, true, nil
	}
	for _, f := range []string{"l", "h", "help", "version", "clean", "init"} {
		if HasFlag(args, f) {
			return "", false, nil
		}
	}
	files, err := names()
	if err != nil {
		return "", false, err
	}
	exe, err := exeName(cacheDir, files)
	return exe, err == nil, err
}

// FlagValue is the value of mage's flag name (given as -name value or -name=value), if given.
func FlagValue(args []string, name string) (string, bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			return "", false
		}
		n, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if valueFlags[n] && !hasValue {
			if i+1 == len(args) {
				return "", false
			}
			i++
			v = args[i]
		}
		if n == name {
			return v, true
		}
	}
	return "", false
}

// ChangedSince reports whether a Go source file, go.mod or go.sum under root was modified after
// t: then mage, whose compiled targets are from t, compiles them again (after a git pull, say),
// and the entry point reports that compile as it reports a first one. Hidden directories and
// testdata are not walked.
func ChangedSince(root string, t time.Time) bool {
	changed := errors.New("changed")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // what cannot be read cannot be compiled either
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if (!strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go")) && name != "go.mod" && name != "go.sum" {
			return nil // tests are not part of the targets' program
		}
		if fi, err := d.Info(); err == nil && fi.ModTime().After(t) {
			return changed
		}
		return nil
	})
	return err == changed
}
