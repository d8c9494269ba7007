package pipeline

import (
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
	"github.com/runtimebuild/runtimebuild/internal/gittest"
)

func TestExclusionsNameTheSettingBehindTheRule(t *testing.T) {
	root := t.TempDir()
	gittest.Write(t, root, map[string]string{"runtime-build/a.tar.gz": "x", "docs/a.md": "a", "node_modules/x.js": "x", "notes.txt": "n", "src/m.py": "m"})
	ignore := buildctx.IgnoreFile{Path: ".dockerignore", Patterns: []buildctx.IgnorePattern{{Line: 2, Pattern: "docs"}}}
	included := whyExcluded(buildctx.NewExplainer(root, ignore, buildctx.Rules{Exclude: []string{"runtime-build"}, Include: []string{"src", "docs"}}))
	plain := whyExcluded(buildctx.NewExplainer(root, buildctx.IgnoreFile{}, buildctx.Rules{}))
	for _, tt := range []struct {
		why  func(string) string
		path string
		want string
	}{
		{included, "runtime-build/a.tar.gz", "it is in OUTPUT_DIR"},
		{included, "docs/a.md", "excluded by .dockerignore line 2: docs"},
		{included, "node_modules/x.js", "excluded by the default excludes (caches, .git, node_modules)"},
		{included, "notes.txt", "not matched by INCLUDE=src,docs"},
		{included, "absent.txt", ""},
		{plain, "notes.txt", "not tracked by git (git add it, or set INCLUDE_UNTRACKED=true)"},
	} {
		if got := tt.why(tt.path); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.path, got, tt.want)
		}
	}
}
