package buildctx

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTheDockerfilesOwnIgnoreFileBeatsTheRootOne(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{".dockerignore": "docs\n", "app/docker/Dockerfile": "FROM scratch\n", "app/docker/Dockerfile.dockerignore": "# own\n\nnotes\n"})
	if got := ignoreFileFor(os.DirFS(root), "app/docker/Dockerfile"); got != "app/docker/Dockerfile.dockerignore" {
		t.Fatalf("ignore file %q", got)
	}
	f, err := LoadIgnore(root, "app/docker/Dockerfile")
	if err != nil || f.Path != "app/docker/Dockerfile.dockerignore" || !slices.Equal(f.Strings(), []string{"notes"}) || f.Patterns[0].Line != 3 {
		t.Fatalf("%+v, %v", f, err)
	}
	if got := ignoreFileFor(os.DirFS(root), "Dockerfile"); got != ".dockerignore" {
		t.Fatalf("without its own, the root one: %q", got)
	}
	if f, err := LoadIgnore(t.TempDir(), "Dockerfile"); err != nil || len(f.Patterns) != 0 {
		t.Fatalf("no ignore file: %+v, %v", f, err)
	}
}

func TestAnIgnoreFileReadThroughARootFollowsNoLinkOut(t *testing.T) {
	outside, dir := t.TempDir(), t.TempDir()
	writeFiles(t, outside, map[string]string{"secret": "Dockerfile\n"})
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\n", "Dockerfile.dockerignore": "own\n", ".dockerignore": "root\n"})
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if f, err := ReadIgnore(root.FS(), "Dockerfile"); err != nil || f.Path != "Dockerfile.dockerignore" || !slices.Equal(f.Strings(), []string{"own"}) {
		t.Fatalf("the Dockerfile's own ignore file through a root: %+v, %v", f, err)
	}
	os.Remove(filepath.Join(dir, "Dockerfile.dockerignore"))
	os.Remove(filepath.Join(dir, ".dockerignore"))
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, ".dockerignore")); err != nil {
		t.Fatal(err)
	}
	if f, err := ReadIgnore(root.FS(), "Dockerfile"); err == nil || !strings.Contains(err.Error(), ".dockerignore") {
		t.Fatalf("read through a link out of the root: %+v, %v", f, err)
	}
	if f, err := LoadIgnore(dir, "Dockerfile"); err != nil || !slices.Equal(f.Strings(), []string{"Dockerfile"}) {
		t.Fatalf("the client reads its own source's links as before: %+v, %v", f, err)
	}
}

func TestIgnorePatternsAreDockersWithTheirLines(t *testing.T) {
	data := "\xEF\xBB\xBFdocs\n# a comment\n\n  /build/  \r\n!build/keep\n  # not a comment\n"
	f, err := parseIgnore(".dockerignore", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []IgnorePattern{{1, "docs"}, {4, "build"}, {5, "!build/keep"}, {6, "# not a comment"}}
	if !slices.Equal(f.Patterns, want) {
		t.Fatalf("patterns %+v, want %+v", f.Patterns, want)
	}
	// The explanation is the selection's: a byte-order mark does not make git the culprit.
	sel, err := Filter(Listing{Files: []string{"docs/a.md", "build/x", "build/keep", "a"}}, Rules{Ignore: f})
	if err != nil || !slices.Equal(sel.Files, []string{"a", "build/keep"}) {
		t.Fatalf("Filter kept %+v, %v", sel, err)
	}
	if got := sel.Why("docs/a.md"); got.Reason != IgnoredByFile || got.String() != "excluded by .dockerignore line 1: docs" {
		t.Fatalf("Why(docs/a.md) = %+v, %q", got, got)
	}
	if got := sel.Why("build/x"); got.String() != "excluded by .dockerignore line 4: build" {
		t.Fatalf("Why(build/x) = %+v, %q", got, got)
	}
}

// FuzzParseIgnore: whatever the file, its patterns are Docker's own and each line is one of the file's.
func FuzzParseIgnore(f *testing.F) {
	f.Add([]byte("\xEF\xBB\xBFdocs\n# c\n\n !x \r\n"))
	f.Add([]byte("a\n\xEF\xBB\xBFb\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseIgnore(".dockerignore", data)
		if err != nil {
			return
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, p := range got.Patterns {
			if p.Line < 0 || p.Line > lines {
				t.Fatalf("pattern %q at line %d of %d", p.Pattern, p.Line, lines)
			}
		}
	})
}
