//go:build !windows

package buildctx

import (
	"context"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/gittest"
)

// On Linux and macOS every name git tracks is a file name, and tar stores names as bytes:
// what git lists is what the archive holds, byte for byte.
func TestNamesGitTracksArePackedAsTheyAre(t *testing.T) {
	names := map[string]string{
		"a:b.txt": "colon", "::error::x": "annotation", `back\slash.txt`: "backslash", "bad\xff\xfe.txt": "latin-1",
		"dir/C:x": "drive", `dir\..\up.txt`: "dots", "tab\tand\nnewline.txt": "controls", "ok.txt": "ok",
	}
	root := gittest.Init(t, t.TempDir(), names)
	l, err := Candidates(context.Background(), root, false)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := Filter(l, Rules{})
	if err != nil {
		t.Fatal(err)
	}
	entries, warnings, err := sel.Scan(root)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("Scan: %v, %q", err, warnings)
	}
	data := packEntries(t, entries)
	_, members := readArchive(t, data)
	got := map[string]string{}
	for _, m := range members {
		got[m.hdr.Name] = m.content
	}
	for name, content := range names {
		if got[name] != content {
			t.Errorf("%q: packed %q, want %q (members %q)", name, got[name], content, got)
		}
	}
	if len(members) != len(names)+1 { // and dir/
		t.Errorf("%d members, want %d", len(members), len(names)+1)
	}
}
