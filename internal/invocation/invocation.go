// Package invocation tells how the user started this process, so that a hint to run another
// target names the command the user really used: the compiled binary's own path, `go tool
// mage`, `mage`, or `go run magefile.go`, with the namespace an importing magefile gave the
// targets (`//mage:import rb` makes `rb:status`).
package invocation

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/magefile/mage/mg"
)

// EntryEnv names the variable the zero-install entry point (magefile.go) sets to the command
// that runs it, for the compiled targets it starts to read.
const EntryEnv = "RUNTIMEBUILD_ENTRY"

// Process is what the command line is derived from.
type Process struct {
	Args0      string   // os.Args[0]
	Args       []string // os.Args[1:]: mage's flags and the targets the user typed
	Executable string   // the running binary
	MageCache  string   // where mage keeps the binaries it compiles (MAGEFILE_CACHE)
	GoCache    string   // the go command's build cache, where `go tool` keeps built tools
	Parent     string   // argv[0] of the parent process, where the platform tells it ("" if not)
	Entry      string   // EntryEnv's value
}

// Current describes this process.
func Current() Process {
	exe, _ := os.Executable()
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	p := Process{Executable: exe, MageCache: resolve(mg.CacheDir()), GoCache: goCache(), Parent: parentArgs0(), Entry: os.Getenv(EntryEnv)}
	if len(os.Args) > 0 {
		p.Args0, p.Args = os.Args[0], os.Args[1:]
	}
	return p
}

// Resume is the command line that runs target with args, as the user started this process:
// Resume("status", id) gives "go tool mage status <id>", "./bin/runtimebuild status <id>", ...
func Resume(target string, args ...string) string { return Current().Command(target, args...) }

// Command is the command line that runs target with args in the way this process was started,
// each argument quoted for a POSIX shell when it needs it (a build ID from a server is text a
// user pastes into a shell).
func (p Process) Command(target string, args ...string) string {
	words := []string{p.Runner(), p.namespace() + target}
	for _, a := range args {
		words = append(words, ShellQuote(a))
	}
	return strings.Join(words, " ")
}

// ShellQuote returns s as one word of a POSIX shell: as it is when it holds only characters no
// shell treats specially, else in single quotes (a single quote inside closes them, is escaped
// and reopens them).
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/@%+=,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Runner is the command that runs a target: "go run magefile.go", "go tool mage", "mage", or
// the compiled binary as it was typed.
func (p Process) Runner() string {
	switch {
	case p.Entry != "":
		return p.Entry
	case p.MageCache != "" && within(p.Executable, p.MageCache): // compiled and started by mage
		parent := filepath.Base(p.Parent)
		if (parent == "mage" || parent == "mage.exe") && !(p.GoCache != "" && within(p.Parent, p.GoCache)) {
			return "mage"
		}
		return "go tool mage"
	case p.Args0 == "":
		return "go tool mage"
	case strings.ContainsAny(p.Args0, `/\`):
		return p.Args0 // as typed: ./bin/runtimebuild
	default:
		return filepath.Base(p.Args0) // found on PATH
	}
}

// targets are the names this package's targets answer to.
var targets = map[string]bool{"all": true, "context": true, "upload": true, "status": true, "cancel": true, "image": true,
	"validate": true, "serve": true, "version": true}

// namespace is the prefix the user typed before one of the targets ("rb:"), or "".
func (p Process) namespace() string {
	for _, a := range p.Args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		if i := strings.LastIndex(a, ":"); i > 0 && targets[strings.ToLower(a[i+1:])] {
			return a[:i+1]
		}
	}
	return ""
}

func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func resolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// goCache is GOCACHE as the go command would choose it, without running it.
func goCache() string {
	if c := os.Getenv("GOCACHE"); c != "" && c != "off" {
		return resolve(c)
	}
	if d, err := os.UserCacheDir(); err == nil {
		return resolve(filepath.Join(d, "go-build"))
	}
	return ""
}
