package buildctx

import (
	"context"
	"errors"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/gittest"
)

func TestFilter(t *testing.T) {
	files := []string{
		"Dockerfile", "README.md", "docs/guide.md", "docs/keep.md", "src/app.py", "src/app.pyc",
		"src/__pycache__/app.cpython-312.pyc", "src/pkg.egg-info/PKG-INFO", "node_modules/x/index.js",
		"web/node_modules/y/index.js", "build/out.bin", "build/keep/me.txt", "a/b/c/secret.log",
		"logs/x.log", "runtime-build/old.tar.gz", ".git/config", "src/.DS_Store", "tests/test_app.py",
	}
	tests := []struct {
		name    string
		rules   Rules
		want    []string
		wantErr *PatternError // List and Pattern, and whether Err is set
	}{
		{
			name:  "without rules only the default excludes apply, at any depth",
			rules: Rules{},
			want: []string{"Dockerfile", "README.md", "a/b/c/secret.log", "build/keep/me.txt", "build/out.bin",
				"docs/guide.md", "docs/keep.md", "logs/x.log", "runtime-build/old.tar.gz", "src/app.py", "tests/test_app.py"},
		},
		{
			name:  "a plain pattern is anchored at the root",
			rules: Rules{Ignore: ignoring("*.md")},
			want: []string{"Dockerfile", "a/b/c/secret.log", "build/keep/me.txt", "build/out.bin", "docs/guide.md",
				"docs/keep.md", "logs/x.log", "runtime-build/old.tar.gz", "src/app.py", "tests/test_app.py"},
		},
		{
			name:  "** matches any number of directories",
			rules: Rules{Ignore: ignoring("**/*.log", "**/*.md")},
			want:  []string{"Dockerfile", "build/keep/me.txt", "build/out.bin", "runtime-build/old.tar.gz", "src/app.py", "tests/test_app.py"},
		},
		{
			name:  "! re-includes what an earlier line excluded, and the last match wins",
			rules: Rules{Ignore: ignoring("docs", "!docs/keep.md", "build", "!build/keep", "build/keep/me.txt")},
			want: []string{"Dockerfile", "README.md", "a/b/c/secret.log", "docs/keep.md", "logs/x.log",
				"runtime-build/old.tar.gz", "src/app.py", "tests/test_app.py"},
		},
		{
			name:  "a directory pattern excludes everything below it",
			rules: Rules{Ignore: ignoring("tests/", "a")},
			want: []string{"Dockerfile", "README.md", "build/keep/me.txt", "build/out.bin", "docs/guide.md", "docs/keep.md",
				"logs/x.log", "runtime-build/old.tar.gz", "src/app.py"},
		},
		{
			name:  "! cannot bring back the default excludes",
			rules: Rules{Ignore: ignoring("!**/*.pyc", "!node_modules")},
			want: []string{"Dockerfile", "README.md", "a/b/c/secret.log", "build/keep/me.txt", "build/out.bin",
				"docs/guide.md", "docs/keep.md", "logs/x.log", "runtime-build/old.tar.gz", "src/app.py", "tests/test_app.py"},
		},
		{
			name:  "the output directory is never packed",
			rules: Rules{Exclude: []string{"runtime-build"}, Ignore: ignoring("!runtime-build")},
			want: []string{"Dockerfile", "README.md", "a/b/c/secret.log", "build/keep/me.txt", "build/out.bin",
				"docs/guide.md", "docs/keep.md", "logs/x.log", "src/app.py", "tests/test_app.py"},
		},
		{
			name:  "INCLUDE keeps only matching paths and what lies below them",
			rules: Rules{Include: []string{"src", "*.md"}},
			want:  []string{"README.md", "src/app.py"},
		},
		{
			name:    "an INCLUDE pattern that matches nothing is a pattern error",
			rules:   Rules{Include: []string{"src", "nothing/here"}},
			wantErr: &PatternError{List: IncludePatterns, Pattern: "nothing/here"},
		},
		{
			name:    "an INCLUDE pattern matching only excluded files matches nothing",
			rules:   Rules{Include: []string{"docs"}, Ignore: ignoring("docs")},
			wantErr: &PatternError{List: IncludePatterns, Pattern: "docs"},
		},
		{
			name:    "a malformed .dockerignore pattern is a pattern error",
			rules:   Rules{Ignore: IgnoreFile{Path: "app/Dockerfile.dockerignore", Patterns: []IgnorePattern{{1, "[z-a"}}}},
			wantErr: &PatternError{List: IgnorePatterns, File: "app/Dockerfile.dockerignore", Err: errors.New("")},
		},
		{
			name:    "a malformed INCLUDE pattern is a pattern error naming it",
			rules:   Rules{Include: []string{"src", "[z-a"}},
			wantErr: &PatternError{List: IncludePatterns, Pattern: "[z-a", Err: errors.New("")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := Filter(Listing{Files: files}, tt.rules)
			if tt.wantErr != nil {
				var pe *PatternError
				if !errors.As(err, &pe) || pe.List != tt.wantErr.List || pe.File != tt.wantErr.File || pe.Pattern != tt.wantErr.Pattern || (pe.Err == nil) != (tt.wantErr.Err == nil) {
					t.Fatalf("err = %#v, want a pattern error like %#v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sel.Files, tt.want) {
				t.Fatalf("got  %q\nwant %q", sel.Files, tt.want)
			}
		})
	}
}

func TestFilterRefusesPathsLeavingTheRoot(t *testing.T) {
	_, err := Filter(Listing{Files: []string{"ok.txt", "../outside"}}, Rules{})
	if err == nil || !strings.Contains(err.Error(), "leaves the root") {
		t.Fatalf("err = %v", err)
	}
}

// ignoring is an ignore file holding patterns, one a line.
func ignoring(patterns ...string) IgnoreFile {
	f := IgnoreFile{Path: ".dockerignore"}
	for i, p := range patterns {
		f.Patterns = append(f.Patterns, IgnorePattern{Line: i + 1, Pattern: p})
	}
	return f
}

func TestTheSelectionRecordsWhyEachPathIsLeftOut(t *testing.T) {
	l := Listing{
		Files:     []string{"out/a.tar.gz", "docs/a.md", "docs/keep.md", "src/__pycache__/m.pyc", "src/m.py", "notes.txt", "src/m.py"},
		Untracked: []string{"draft.txt", "src/new.py"},
		Ignored:   []string{".venv/", "src/.env.local", "src/m.py"},
		InGit:     true,
	}
	ignore := IgnoreFile{Path: "Dockerfile.dockerignore", Patterns: []IgnorePattern{{1, "*.tmp"}, {3, "docs"}, {4, "!docs/keep.md"}}}
	sel, err := Filter(l, Rules{Ignore: ignore, Exclude: []string{"out"}, Include: []string{"src", "docs"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sel.Files, []string{"docs/keep.md", "src/m.py"}) {
		t.Fatalf("kept %q", sel.Files)
	}
	for _, tt := range []struct {
		path string
		want Reason
	}{
		{"out/a.tar.gz", InExcludedDir},
		{"out", InExcludedDir}, // a directory: what was recorded below it
		{"docs/a.md", IgnoredByFile},
		{"src/__pycache__/m.pyc", DefaultExclude},
		{"src/__pycache__", DefaultExclude},
		{"notes.txt", NotIncluded},
		{"draft.txt", Untracked},
		{"src/new.py", Untracked},
		{".venv/lib/site.py", GitIgnored}, // below a directory git ignores whole
		{".venv", GitIgnored},
		{"src/.env.local", GitIgnored},
		{"src/m.py", NotExcluded}, // packed, whatever git's exclude list says of it
		{"gone.txt", NotExcluded},
		{"no", NotExcluded},
	} {
		if got := sel.Why(tt.path); got.Reason != tt.want {
			t.Errorf("Why(%s) = %+v, want reason %d", tt.path, got, tt.want)
		}
	}
	if got := sel.Why("docs/a.md"); got.File != "Dockerfile.dockerignore" || got.Line != 3 || got.Pattern != "docs" ||
		got.String() != "excluded by Dockerfile.dockerignore line 3: docs" {
		t.Errorf("the ignore rule's facts: %+v, worded %q", got, got)
	}
	if got := sel.Why("notes.txt"); !slices.Equal(got.Include, []string{"src", "docs"}) || got.String() != "" {
		t.Errorf("the include rule's facts: %+v, worded %q", got, got)
	}
}

func TestTheSelectionOfACheckoutRecordsWhatGitAndTheDiskLeftOut(t *testing.T) {
	ctx := context.Background()
	root := gittest.Init(t, t.TempDir(), map[string]string{
		".gitignore": "build/\n*.log\n", "app.py": "a", "gone.txt": "g", "sub/mod.py": "m",
	})
	gittest.Write(t, root, map[string]string{"new.py": "n", "build/x/y.o": "o", "debug.log": "l", "drafts/a/b.md": "b"})
	if err := os.Remove(filepath.Join(root, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	marks := gittest.Hostile(t, root)
	l, err := Candidates(ctx, root, false)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := Filter(l, Rules{})
	if err != nil {
		t.Fatal(err)
	}
	entries, warnings, err := sel.Scan(root)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Scan: %v, warnings %q", err, warnings)
	}
	names := slices.Collect(maps.Keys(Names(entries)))
	slices.Sort(names)
	if want := []string{".gitattributes", ".gitignore", "app.py", "sub/mod.py"}; !slices.Equal(names, want) {
		t.Fatalf("packed %q, want %q", names, want)
	}
	for p, want := range map[string]string{
		"new.py": "", "build/x/y.o": "ignored by git (.gitignore)", "build": "ignored by git (.gitignore)",
		"debug.log": "ignored by git (.gitignore)", "gone.txt": "git tracks it, but it is missing from the work tree",
	} {
		if got := sel.Why(p); got.String() != want || got.Reason == NotExcluded {
			t.Errorf("Why(%s) = %+v %q, want %q", p, got, got, want)
		}
	}
	for _, p := range []string{"new.py", "drafts/a/b.md", "drafts"} {
		if got := sel.Why(p); got.Reason != Untracked {
			t.Errorf("Why(%s) = %+v, want Untracked", p, got)
		}
	}
	gittest.NoMarks(t, marks)
}

func TestNamesWindowsCannotHoldAreOneWarningAndRecorded(t *testing.T) {
	root := t.TempDir()
	names := []string{"a:b.txt", "::error::x", `back\slash.txt`, "ok.txt", "dir/CON.txt", "trail.", "q?.md", "s6", "s7"}
	files := map[string]string{}
	for _, n := range names {
		files[n] = n
	}
	writeFiles(t, root, files)
	sel, err := Filter(Listing{Files: names}, Rules{})
	if err != nil {
		t.Fatal(err)
	}
	entries, warnings, err := sel.scan(root, windowsCannotHold)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || len(warnings) != 1 || !strings.HasPrefix(warnings[0], "6 file(s) git tracks cannot exist on this system and are not packed: ") ||
		!strings.Contains(warnings[0], "and 1 more") {
		t.Fatalf("entries %d, warnings %q", len(entries), warnings)
	}
	if got := sel.Why("a:b.txt"); got.Reason != HostCannotHold || !strings.Contains(got.String(), `":" is not allowed`) {
		t.Fatalf("Why(a:b.txt) = %+v %q", got, got)
	}
	if entries, warnings, err := sel.Scan(root); runtime.GOOS != "windows" && (err != nil || len(entries) != len(names) || len(warnings) != 0) {
		t.Fatalf("on %s every name is a file name: %d entries, %q, %v", runtime.GOOS, len(entries), warnings, err)
	}
}

func TestWindowsCannotHold(t *testing.T) {
	for name, cannot := range map[string]bool{
		"a.txt": false, "dir/sub/file.go": false, "名前.txt": false, "con.d/x": true, "CONSOLE.txt": false,
		"a:b.txt": true, `back\slash`: true, "x|y": true, "dir./x": true, "nul": true, "Com1.log": true,
		"lpt9": true, "space ": true, "tab\tname": true, "question?": true, "star*": true, `"q"`: true, "<a>": true,
	} {
		if got := windowsCannotHold(name); (got != "") != cannot {
			t.Errorf("windowsCannotHold(%q) = %q, want refused: %v", name, got, cannot)
		}
	}
}

func TestNormalizePath(t *testing.T) {
	good := map[string]string{
		"a/b": "a/b", "./a//b/": "a/b", "a/./b/../c": "a/c", "ünïcödé/名前.txt": "ünïcödé/名前.txt",
		`back\slash.txt`: `back\slash.txt`, `dir\..\x`: `dir\..\x`, "a:b.txt": "a:b.txt", "C:/x": "C:/x",
		"::error::x": "::error::x", "bad\xff\xfe.txt": "bad\xff\xfe.txt", "x/\xc3": "x/\xc3",
	}
	for in, want := range good {
		if got, err := NormalizePath(in); err != nil || got != want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "..", "../x", "a/../../x", "/etc/passwd", "a\x00b"} {
		if got, err := NormalizePath(in); err == nil {
			t.Errorf("NormalizePath(%q) = %q, want an error", in, got)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "/abs", "a/./b//c/..", `a\..\..\b`, "名前", "", ".", "a:b", "::error::x", "\xff/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NormalizePath(in)
		if err != nil {
			if in != "" && !strings.HasPrefix(in, "/") && strings.IndexByte(in, 0) < 0 {
				if c := path.Clean(in); c != "." && c != ".." && !strings.HasPrefix(c, "../") {
					t.Fatalf("NormalizePath(%q) refused a relative name inside the root: %v", in, err)
				}
			}
			return
		}
		if got == "" || got == "." || strings.HasPrefix(got, "/") || strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("NormalizePath(%q) = %q: not a clean relative path", in, got)
		}
		for _, el := range strings.Split(got, "/") {
			if el == ".." || el == "." || el == "" {
				t.Fatalf("NormalizePath(%q) = %q has element %q", in, got, el)
			}
		}
		if again, err := NormalizePath(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
		if escapes("x", got) {
			t.Fatalf("%q escapes the root", got)
		}
		// A name with nothing to clean is kept byte for byte, as git gave it.
		if !slices.ContainsFunc(strings.Split(in, "/"), func(el string) bool { return el == "" || el == "." || el == ".." }) && got != in {
			t.Fatalf("NormalizePath(%q) = %q changed a name", in, got)
		}
	})
}
