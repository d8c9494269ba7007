package outputdir

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ownedByName treats "<x>.result" as the result file of archive x.
func ownedByName(dir, name string) []string {
	if a, ok := strings.CutSuffix(name, ".result"); ok {
		return []string{a, name}
	}
	return nil
}

func write(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func list(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestCleanKeepsWhatALiveRunHoldsOrWrites(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "held.tgz", "held.tgz.result", "old.tgz", "old.tgz.result", "notes.txt",
		".runtimebuild-123.tmp", ".runtimebuild-dead.lock") // left by runs that were killed
	live, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Hold("held.tgz"); err != nil {
		t.Fatal(err)
	}
	writing, err := CreateTemp(dir)
	if err != nil {
		t.Fatal(err)
	}
	removed, err := Clean(dir, ownedByName)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{".runtimebuild-123.tmp", ".runtimebuild-dead.lock", "old.tgz", "old.tgz.result"}; !slices.Equal(removed, want) {
		t.Fatalf("removed %q, want %q", removed, want)
	}
	for _, kept := range []string{"held.tgz", "held.tgz.result", "notes.txt", filepath.Base(writing.Name()), filepath.Base(live.lock.Name())} {
		if _, err := os.Stat(filepath.Join(dir, kept)); err != nil {
			t.Errorf("%s: %v", kept, err)
		}
	}

	// Once the run ends and the writer commits, all of it is an earlier output like any other.
	if err := writing.Commit("new.tgz"); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "new.tgz.result")
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	if removed, err = Clean(dir, ownedByName); err != nil {
		t.Fatal(err)
	}
	if want := []string{"held.tgz", "held.tgz.result", "new.tgz", "new.tgz.result"}; !slices.Equal(removed, want) {
		t.Fatalf("removed %q, want %q", removed, want)
	}
	if left := list(t, dir); !slices.Equal(left, []string{"notes.txt"}) {
		t.Fatalf("left %q", left)
	}
}

func TestARunLeavesNothingOfItsOwn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	tmp, err := CreateTemp(dir)
	if err != nil {
		t.Fatal(err)
	}
	tmp.WriteString("half")
	tmp.Discard()
	if err := WriteFile(filepath.Join(dir, "result.json"), []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if left := list(t, dir); !slices.Equal(left, []string{"result.json"}) {
		t.Fatalf("left %q, want only the committed file", left)
	}
	fi, _ := os.Stat(filepath.Join(dir, "result.json"))
	if fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode())
	}
}

func TestHoldRefusesPaths(t *testing.T) {
	r, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, bad := range []string{"", "a/b", "a\nb"} {
		if err := r.Hold(bad); err == nil {
			t.Errorf("Hold(%q) succeeded", bad)
		}
	}
}

func TestCleanOfAMissingDirectoryIsNothing(t *testing.T) {
	removed, err := Clean(filepath.Join(t.TempDir(), "none"), ownedByName)
	if err != nil || removed != nil {
		t.Fatalf("%q, %v", removed, err)
	}
}
