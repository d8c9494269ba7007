package pipeline

import (
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
)

func TestExclusionsNameTheSettingBehindTheRule(t *testing.T) {
	listing := buildctx.Listing{
		Files:     []string{"runtime-build/a.tar.gz", "docs/a.md", "node_modules/x.js", "notes.txt", "src/m.py"},
		Untracked: []string{"draft.txt"},
		Ignored:   []string{"dist/"},
		InGit:     true,
	}
	ignore := buildctx.IgnoreFile{Path: ".dockerignore", Patterns: []buildctx.IgnorePattern{{Line: 2, Pattern: "docs"}, {Line: 3, Pattern: "src/x"}}}
	sel, err := buildctx.Filter(listing, buildctx.Rules{Ignore: ignore, Exclude: []string{"runtime-build"}, Include: []string{"src", "notes.txt"}})
	if err != nil {
		t.Fatal(err)
	}
	listing.Files = append(listing.Files, "main.go")
	plain, err := buildctx.Filter(listing, buildctx.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	included := whyExcluded(sel)
	for _, tt := range []struct {
		why  func(string) string
		path string
		want string
	}{
		{included, "runtime-build/a.tar.gz", "it is in OUTPUT_DIR"},
		{included, "docs/a.md", "excluded by .dockerignore line 2: docs"},
		{included, "node_modules/x.js", "excluded by the default excludes (caches, .git, node_modules)"},
		{whyExcluded(plain), "docs/a.md", ""},
		{included, "main.go", ""},
		{included, "absent.txt", ""},
		{included, "draft.txt", "not tracked by git (git add it, or set INCLUDE_UNTRACKED=true)"},
		{included, "dist/app.js", "ignored by git (.gitignore)"},
	} {
		if got := tt.why(tt.path); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.path, got, tt.want)
		}
	}
	sel, err = buildctx.Filter(listing, buildctx.Rules{Include: []string{"src"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := whyExcluded(sel)("notes.txt"), "not matched by INCLUDE=src"; got != want {
		t.Errorf("notes.txt: %q, want %q", got, want)
	}
}
