package buildctx

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
)

// Explainer tells why a file of the source is not in the build context.
type Explainer struct {
	root     string
	file     string // the ignore file's path, for messages
	ignore   []ignoreLine
	defaults *patternmatcher.PatternMatcher
	rules    Rules
}

type ignoreLine struct {
	IgnorePattern
	exclusion bool
	m         *patternmatcher.PatternMatcher
}

// NewExplainer explains with the ignore file that selected the files (see LoadIgnore) and the
// other rules of the selection.
func NewExplainer(root string, ignore IgnoreFile, rules Rules) *Explainer {
	e := &Explainer{root: root, file: ignore.Path, rules: rules}
	e.defaults, _ = patternmatcher.New(DefaultExcludes)
	for _, p := range ignore.Patterns {
		pattern, exclusion := strings.CutPrefix(p.Pattern, "!")
		m, err := patternmatcher.New([]string{pattern})
		if err != nil {
			continue
		}
		e.ignore = append(e.ignore, ignoreLine{IgnorePattern: p, exclusion: exclusion, m: m})
	}
	return e
}

// Why returns why p (a path relative to the root) is not packed, or "" when p is not a file
// of the source or nothing known excludes it.
func (e *Explainer) Why(p string) string {
	if _, err := os.Lstat(filepath.Join(e.root, filepath.FromSlash(p))); err != nil {
		return ""
	}
	if below(p, e.rules.Exclude) {
		return "it is in OUTPUT_DIR"
	}
	var last *ignoreLine
	for i := range e.ignore {
		if matches(e.ignore[i].m, p) {
			if e.ignore[i].exclusion {
				last = nil
			} else {
				last = &e.ignore[i]
			}
		}
	}
	if last != nil {
		if last.Line == 0 {
			return fmt.Sprintf("excluded by %s: %s", e.file, last.Pattern)
		}
		return fmt.Sprintf("excluded by %s line %d: %s", e.file, last.Line, last.Pattern)
	}
	if matches(e.defaults, p) {
		return "excluded by the default excludes (caches, .git, node_modules)"
	}
	if len(e.rules.Include) > 0 {
		return "not matched by INCLUDE=" + strings.Join(e.rules.Include, ",")
	}
	return "not tracked by git (git add it, or set INCLUDE_UNTRACKED=true)"
}
