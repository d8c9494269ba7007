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
	// The explanation agrees with the selection: a byte-order mark does not make git the culprit.
	root := t.TempDir()
	writeFiles(t, root, map[string]string{".dockerignore": data, "docs/a.md": "a", "build/x": "x"})
	why := NewExplainer(root, f, Rules{}).Why
	if got := why("docs/a.md"); got.Reason != IgnoredByFile || got.String() != "excluded by .dockerignore line 1: docs" {
		t.Fatalf("Why(docs/a.md) = %+v, %q", got, got)
	}
	if got := why("build/x"); got.String() != "excluded by .dockerignore line 4: build" {
		t.Fatalf("Why(build/x) = %+v, %q", got, got)
	}
	kept, err := Filter([]string{"docs/a.md", "build/x", "build/keep", "a"}, Rules{DockerIgnore: f.Strings()})
	if err != nil || !slices.Equal(kept, []string{"a", "build/keep"}) {
		t.Fatalf("Filter kept %q, %v", kept, err)
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

func TestTheExplainerTellsEachRuleWithItsFacts(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"out/a.tar.gz": "x", "docs/a.md": "a", "src/__pycache__/m.pyc": "c", "src/m.py": "m", "notes.txt": "n"})
	ignore := IgnoreFile{Path: "Dockerfile.dockerignore", Patterns: []IgnorePattern{{3, "docs"}}}
	why := NewExplainer(root, ignore, Rules{Exclude: []string{"out"}, Include: []string{"src", "docs"}}).Why
	for _, tt := range []struct {
		path string
		want Reason
	}{
		{"out/a.tar.gz", InExcludedDir},
		{"docs/a.md", IgnoredByFile},
		{"src/__pycache__/m.pyc", DefaultExclude},
		{"notes.txt", NotIncluded},
		{"gone.txt", NotExcluded},
	} {
		if got := why(tt.path); got.Reason != tt.want {
			t.Errorf("Why(%s) = %+v, want reason %d", tt.path, got, tt.want)
		}
	}
	if got := why("docs/a.md"); got.File != "Dockerfile.dockerignore" || got.Line != 3 || got.Pattern != "docs" {
		t.Errorf("the ignore rule's facts: %+v", got)
	}
	if got := why("notes.txt"); !slices.Equal(got.Include, []string{"src", "docs"}) || got.String() != "" {
		t.Errorf("the include rule's facts: %+v, worded %q", got, got)
	}
	if got := NewExplainer(root, IgnoreFile{}, Rules{}).Why("notes.txt"); got.Reason != NotCandidate {
		t.Errorf("a file no rule excludes: %+v, want NotCandidate", got)
	}
}
