package pipeline

import (
	"bytes"
	"context"
	"os"
	"slices"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/gittest"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
)

// Between packing and sending in one `all`, another run's CLEAN_OUTPUT must not take the
// archive away (issue 11, 9): Pack's hold lasts until the archive is released (Send does).
func TestTheArchiveStaysHeldFromPackToSend(t *testing.T) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	out := t.TempDir()
	p, err := Pack(context.Background(), load(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out}).Pack, "", progress.New(&bytes.Buffer{}, "quiet"))
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := result.Clean(out); err != nil || len(removed) != 0 {
		t.Fatalf("another run's cleaning removed %q (%v) before the upload", removed, err)
	}
	p.Release() // what Send does when it is done
	removed, err := result.Clean(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{p.Archive.Path[len(out)+1:], p.Archive.Path[len(out)+1:] + ".json"}; !slices.Equal(removed, want) {
		t.Fatalf("removed %q, want %q once the run is over", removed, want)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Fatalf("left %v", left)
	}
}
