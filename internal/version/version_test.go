package version

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/gittest"
)

func TestTheVersionComesFromTheBuildInformation(t *testing.T) {
	none := func() (string, bool) { return "", false }
	source := func() (string, bool) { return "feedfacecafe0000", true }
	for _, tt := range []struct {
		name   string
		bi     debug.BuildInfo
		linked string
		want   string
	}{
		{"a tagged dependency of an importing module", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "example.com/consumer"},
			Deps: []*debug.Module{{Path: Module, Version: "v1.2.3"}}}, "", "runtimebuild v1.2.3 (revision unknown; go1.26.0)"},
		{"a pseudo-version carries the revision", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "example.com/consumer"},
			Deps: []*debug.Module{{Path: Module, Version: "v0.0.0-20261125140000-0123456789ab"}}}, "", "runtimebuild v0.0.0-20261125140000-0123456789ab (revision 0123456789ab; go1.26.0)"},
		{"the main module stamped by the go command", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: Module, Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abcdef0123456789abcdef"}, {Key: "vcs.modified", Value: "true"}}}, "", "runtimebuild (devel) (revision abcdef012345, modified; go1.26.0)"},
		{"mage's build of this repository, stamped at link time", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "command-line-arguments"},
			Deps: []*debug.Module{{Path: Module, Version: "(devel)"}}}, "0011223344556677", "runtimebuild (devel) (revision 001122334455; go1.26.0)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := fromBuildInfo(&tt.bi, tt.linked, none).String(); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	bi := debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "command-line-arguments"}, Deps: []*debug.Module{{Path: Module, Version: "(devel)"}}}
	if got := fromBuildInfo(&bi, "", source).String(); !strings.Contains(got, "revision feedfacecafe, modified") {
		t.Fatalf("without a stamp the checkout is asked: %q", got)
	}
}

func TestThisCheckoutKnowsItsRevision(t *testing.T) {
	rev, _ := sourceRevision()
	if len(rev) != 40 {
		t.Fatalf("sourceRevision = %q, want the checkout's HEAD", rev)
	}
}

func TestTheRevisionOfACheckoutRunsNothingItConfigures(t *testing.T) {
	dir := gittest.Init(t, t.TempDir(), map[string]string{"a.txt": "a"})
	marks := gittest.Hostile(t, dir)
	rev, modified := checkoutRevision(dir)
	if want := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "HEAD")); rev != want || modified {
		t.Fatalf("checkoutRevision = %q, %v; want %q, false", rev, modified, want)
	}
	gittest.NoMarks(t, marks)
	gittest.Write(t, dir, map[string]string{"a.txt": "changed"})
	if _, modified := checkoutRevision(dir); !modified {
		t.Fatal("a changed file: not modified")
	}
	gittest.NoMarks(t, marks)
}
