package result

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWriteAndReadRoundTripBesideTheArchive(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "a.tar.gz")
	in := Result{SHA: "abc", Ref: "main", Target: "source", Dockerfile: "x/Dockerfile", Tags: []string{"abc-python-source", "main-python-source"}, SHA256: "00"}
	if err := Write(archive, in); err != nil {
		t.Fatal(err)
	}
	got, err := Read(archive)
	in.Generator, in.Archive = Generator, "a.tar.gz"
	if err != nil || got.SHA != in.SHA || got.Ref != in.Ref || got.Dockerfile != in.Dockerfile || !slices.Equal(got.Tags, in.Tags) || got.Archive != in.Archive || got.Generator != Generator {
		t.Fatalf("read %+v, %v; want %+v", got, err, in)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".runtimebuild-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestCleanRemovesOnlyWhatItsResultFilesName(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"ours.tar.gz": "a", "theirs.tar.gz": "b", "notes.json": `{"generator":"other","archive":"theirs.tar.gz"}`,
		".runtimebuild-1.tmp": "interrupted",
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	if err := Write(filepath.Join(dir, "ours.tar.gz"), Result{}); err != nil {
		t.Fatal(err)
	}
	removed, err := Clean(dir)
	if err != nil || !slices.Equal(removed, []string{".runtimebuild-1.tmp", "ours.tar.gz", "ours.tar.gz.json"}) {
		t.Fatalf("removed %q, %v", removed, err)
	}
	for _, kept := range []string{"theirs.tar.gz", "notes.json"} {
		if _, err := os.Stat(filepath.Join(dir, kept)); err != nil {
			t.Errorf("%s: %v", kept, err)
		}
	}
}

func TestGitHubOutputGetsOneLinePerValue(t *testing.T) {
	file := filepath.Join(t.TempDir(), "out")
	if err := AppendGitHubOutput(file, [2]string{"tags", "a,b"}, [2]string{"evil", "x\ny=z"}, [2]string{"image", "r/i:t"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != "tags=a,b\nimage=r/i:t\n" {
		t.Fatalf("GITHUB_OUTPUT %q", b)
	}
	if err := AppendGitHubOutput("", [2]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
}
