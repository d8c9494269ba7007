package buildctx

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
)

// Explainer tells why a file of the source is not in the build context.
type Explainer struct {
	root   string
	ignore []ignoreLine
	rules  Rules
}

type ignoreLine struct {
	line      int
	pattern   string
	exclusion bool
	m         *patternmatcher.PatternMatcher
}

// NewExplainer reads root/.dockerignore with its line numbers.
func NewExplainer(root string, rules Rules) *Explainer {
	e := &Explainer{root: root, rules: rules}
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		return e
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		raw := strings.TrimSpace(sc.Text())
		if raw == "" || strings.HasPrefix(raw, "#") {
			continue
		}
		pattern, exclusion := strings.CutPrefix(raw, "!")
		pattern = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(strings.TrimSpace(pattern))), "/")
		m, err := patternmatcher.New([]string{pattern})
		if err != nil {
			continue
		}
		e.ignore = append(e.ignore, ignoreLine{line: n, pattern: raw, exclusion: exclusion, m: m})
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
		return fmt.Sprintf("excluded by .dockerignore line %d: %s", last.line, last.pattern)
	}
	if m, _ := patternmatcher.New(DefaultExcludes); matches(m, p) {
		return "excluded by the default excludes (caches, .git, node_modules)"
	}
	if len(e.rules.Include) > 0 {
		return "not matched by INCLUDE=" + strings.Join(e.rules.Include, ",")
	}
	return "not tracked by git (git add it, or set INCLUDE_UNTRACKED=true)"
}
