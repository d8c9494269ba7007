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

// Between context and upload of one `all`, another run's CLEAN_OUTPUT must not take the
// archive away (issue 11, 9): context's hold passes to upload with the archive.
func TestTheArchiveStaysHeldFromContextToUpload(t *testing.T) {
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	out := t.TempDir()
	ctx := HandOver(context.Background())
	p, err := Context(ctx, load(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out}), progress.New(&bytes.Buffer{}, "quiet"))
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := result.Clean(out); err != nil || len(removed) != 0 {
		t.Fatalf("another run's cleaning removed %q (%v) before the upload", removed, err)
	}
	_, run, ok := handedOver(ctx)
	if !ok || run == nil {
		t.Fatal("nothing handed over")
	}
	run.Close() // what Upload does when it is done
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
