// Package version tells which runtimebuild a binary is: its module version and VCS revision.
package version

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/gitinfo"
)

// Module is the path of this tool's module.
const Module = "github.com/runtimebuild/runtimebuild"

// revision is set at link time by `go run magefile.go -compile` (-X), where the go command
// stamps none (mage builds from a list of files).
var revision string

// Info is what version reports.
type Info struct {
	Version  string // the module version: a tag, a pseudo-version, or (devel) in this repository
	Revision string // the VCS revision; "" if unknown
	Modified bool   // the work tree had changes
	Go       string // the Go version it was built with
}

// String is "runtimebuild v1.2.3 (revision 0123abc, modified; go1.26.0)".
func (i Info) String() string {
	rev := i.Revision
	if rev == "" {
		rev = "unknown"
	} else if len(rev) > 12 {
		rev = rev[:12]
	}
	if i.Modified {
		rev += ", modified"
	}
	return "runtimebuild " + i.Version + " (revision " + rev + "; " + i.Go + ")"
}

// Get reads the binary's build information (once: it does not change while the process runs).
var Get = sync.OnceValue(get)

func get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "(unknown)", Revision: revision, Go: runtime.Version()}
	}
	return fromBuildInfo(bi, revision, sourceRevision)
}

// fromBuildInfo picks this module out of bi: the main module or, in a repository that imports
// the targets, a dependency (whose pseudo-version carries the revision).
func fromBuildInfo(bi *debug.BuildInfo, linked string, fromSource func() (string, bool)) Info {
	info := Info{Version: "(devel)", Go: bi.GoVersion}
	mod := &bi.Main
	for _, d := range bi.Deps {
		if d.Path == Module {
			mod = d
			if d.Replace != nil && d.Replace.Version != "" {
				mod = d.Replace
			}
		}
	}
	if mod.Path == Module && mod.Version != "" {
		info.Version = mod.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	if info.Revision == "" {
		if i := strings.LastIndex(info.Version, "-"); i > 0 && strings.Count(info.Version, "-") >= 2 {
			info.Revision = strings.TrimSuffix(info.Version[i+1:], "+dirty") // v0.0.0-20261125140000-0123456789ab
		}
	}
	if info.Revision == "" {
		info.Revision = linked
	}
	if info.Revision == "" && info.Version == "(devel)" && fromSource != nil {
		info.Revision, info.Modified = fromSource()
	}
	return info
}

// sourceRevision asks git about the checkout this binary was built from, when it is still
// there: mage compiles the targets from the checkout it runs in.
func sourceRevision() (string, bool) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", false
	}
	return checkoutRevision(filepath.Dir(file))
}

// checkoutRevision is HEAD of the checkout holding dir and whether tracked files differ from it,
// asked through gitinfo, which lets git run nothing the checkout configures.
func checkoutRevision(dir string) (string, bool) {
	if _, err := os.Stat(dir); err != nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	head, err := gitinfo.Head(ctx, dir)
	if err != nil {
		return "", false
	}
	modified, err := gitinfo.Modified(ctx, dir)
	return head.SHA, err == nil && modified
}
