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
	e.defaults, _ = patternmatcher.New(defaultExcludes)
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

// Reason is the rule of the selection that left a file out.
type Reason int

// The reasons a file of the source is not packed.
const (
	NotExcluded    Reason = iota // not a file of the source, or nothing known excludes it
	InExcludedDir                // below a directory of Rules.Exclude
	IgnoredByFile                // a pattern of the ignore file
	DefaultExclude               // defaultExcludes
	NotIncluded                  // no pattern of Rules.Include matches it
	NotCandidate                 // not among the candidates: git does not track it
)

// Exclusion is why a file of the source is not packed: the reason and the rule's facts. The
// caller words it, naming the settings behind the rules.
type Exclusion struct {
	Reason  Reason
	File    string   // IgnoredByFile: the ignore file's path
	Line    int      // IgnoredByFile: the pattern's line, 0 when it could not be told
	Pattern string   // IgnoredByFile: the pattern
	Include []string // NotIncluded: the include patterns
}

// String words the exclusions that need no setting named ("excluded by .dockerignore line
// 2: docs"); it is "" for the others.
func (x Exclusion) String() string {
	switch x.Reason {
	case IgnoredByFile:
		if x.Line == 0 {
			return fmt.Sprintf("excluded by %s: %s", x.File, x.Pattern)
		}
		return fmt.Sprintf("excluded by %s line %d: %s", x.File, x.Line, x.Pattern)
	case DefaultExclude:
		return "excluded by the default excludes (caches, .git, node_modules)"
	}
	return ""
}

// Why returns why p (a path relative to the root) is not packed; its Reason is NotExcluded
// when p is not a file of the source or nothing known excludes it.
func (e *Explainer) Why(p string) Exclusion {
	if _, err := os.Lstat(filepath.Join(e.root, filepath.FromSlash(p))); err != nil {
		return Exclusion{}
	}
	if below(p, e.rules.Exclude) {
		return Exclusion{Reason: InExcludedDir}
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
		return Exclusion{Reason: IgnoredByFile, File: e.file, Line: last.Line, Pattern: last.Pattern}
	}
	if matches(e.defaults, p) {
		return Exclusion{Reason: DefaultExclude}
	}
	if len(e.rules.Include) > 0 {
		return Exclusion{Reason: NotIncluded, Include: e.rules.Include}
	}
	return Exclusion{Reason: NotCandidate}
}
