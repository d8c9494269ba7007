// Package buildctx selects the files of a build context and packs them into a reproducible
// tar.gz archive.
package buildctx

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/patternmatcher"

	"github.com/runtimebuild/runtimebuild/internal/gitinfo"
)

// defaultExcludes are never packed, whatever .dockerignore says (the original tool's list,
// matched at any depth).
var defaultExcludes = []string{
	"**/__pycache__", "**/*.py[cod]", "**/.pytest_cache", "**/.coverage", "**/*.egg-info",
	"**/.git", "**/node_modules", "**/.DS_Store", "**/Thumbs.db",
}

// Rules decide which of the candidate files are packed.
type Rules struct {
	Ignore  IgnoreFile // the ignore file (LoadIgnore); its patterns in file order, with their lines
	Include []string   // when set, only paths matching one of these (or below one)
	Exclude []string   // paths excluded with everything below them (the output directory), relative
}

// Listing is what the source holds, as git sees it: the candidates for packing, and in git
// the files that are no candidates, so that a selection can say why they are left out.
type Listing struct {
	Files     []string // tracked (and, when asked, untracked but not ignored) files; outside git every file
	Untracked []string // in git, files neither tracked nor ignored, when not candidates; a directory of them ends with "/"
	Ignored   []string // in git, what git ignores; a directory ignored whole ends with "/"
	InGit     bool
}

// Candidates lists what the source at root holds (see Listing): the files git tracks (plus
// untracked, not ignored ones when untracked is true), or every file outside git.
func Candidates(ctx context.Context, root string, untracked bool) (Listing, error) {
	if !gitinfo.IsRepository(ctx, root) {
		files, err := walk(ctx, root)
		return Listing{Files: files}, err
	}
	l := Listing{InGit: true}
	var err error
	if l.Files, err = gitinfo.TrackedFiles(ctx, root); err != nil {
		return Listing{}, err
	}
	if untracked {
		more, err := gitinfo.UntrackedFiles(ctx, root)
		if err != nil {
			return Listing{}, err
		}
		l.Files = append(l.Files, more...)
	} else if l.Untracked, err = gitinfo.UntrackedPaths(ctx, root); err != nil {
		return Listing{}, err
	}
	if l.Ignored, err = gitinfo.IgnoredFiles(ctx, root); err != nil {
		return Listing{}, err
	}
	return l, nil
}

func walk(ctx context.Context, root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", root, err)
	}
	return files, nil
}

// Selection is what the rules decided: the paths to pack and, for every path of the source
// left out, why. "Why is X not in the archive" is a lookup (Why), never worked out again.
type Selection struct {
	Files   []string             // the paths to pack: normalised, sorted, each once
	dropped map[string]Exclusion // path (a directory left out whole: "dir/") → why
	keys    []string             // dropped's keys, sorted once the selection is done (index)
}

// drop records why p is left out; the first reason recorded stands.
func (s *Selection) drop(p string, x Exclusion) {
	if s.dropped == nil {
		s.dropped = map[string]Exclusion{}
	}
	if _, ok := s.dropped[p]; !ok {
		s.dropped[p] = x
	}
}

// Filter applies the rules to the listing: it keeps the candidates that no rule excludes,
// normalised, sorted and without duplicates, and records for every other path why it is left
// out. A malformed pattern, or an include pattern that matches nothing, is a *PatternError.
func Filter(l Listing, rules Rules) (*Selection, error) {
	if _, err := patternmatcher.New(rules.Ignore.Strings()); err != nil {
		return nil, &PatternError{List: IgnorePatterns, File: rules.Ignore.Path, Err: err}
	}
	lines := compileIgnore(rules.Ignore)
	defaults, err := patternmatcher.New(defaultExcludes)
	if err != nil {
		return nil, err
	}
	includes := make([]*patternmatcher.PatternMatcher, len(rules.Include))
	for i, p := range rules.Include {
		if includes[i], err = patternmatcher.New([]string{p}); err != nil {
			return nil, &PatternError{List: IncludePatterns, Pattern: p, Err: err}
		}
	}
	used := make([]bool, len(includes))
	seen := make(map[string]bool, len(l.Files))
	sel := &Selection{}
	for _, c := range l.Files {
		p, err := NormalizePath(c)
		if err != nil {
			return nil, fmt.Errorf("selecting files: %w", err)
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		if below(p, rules.Exclude) {
			sel.drop(p, Exclusion{Reason: InExcludedDir})
			continue
		}
		if line := lastIgnoreLine(lines, p); line != nil {
			sel.drop(p, Exclusion{Reason: IgnoredByFile, File: rules.Ignore.Path, Line: line.Line, Pattern: line.Pattern})
			continue
		}
		if matches(defaults, p) {
			sel.drop(p, Exclusion{Reason: DefaultExclude})
			continue
		}
		if len(includes) > 0 {
			in := false
			for i, m := range includes {
				if matches(m, p) {
					used[i], in = true, true
				}
			}
			if !in {
				sel.drop(p, Exclusion{Reason: NotIncluded, Include: rules.Include})
				continue
			}
		}
		sel.Files = append(sel.Files, p)
	}
	for i, u := range used {
		if !u {
			return nil, &PatternError{List: IncludePatterns, Pattern: rules.Include[i]}
		}
	}
	for _, reason := range []struct {
		paths []string
		why   Reason
	}{{l.Untracked, Untracked}, {l.Ignored, GitIgnored}} {
		for _, f := range reason.paths {
			if p, err := NormalizePath(f); err == nil && !seen[p] {
				if strings.HasSuffix(f, "/") {
					p += "/"
				}
				sel.drop(p, Exclusion{Reason: reason.why})
			}
		}
	}
	sort.Strings(sel.Files)
	sel.index()
	return sel, nil
}

// ignoreLine is one pattern of the ignore file, compiled alone, so that the line deciding a
// path is known.
type ignoreLine struct {
	IgnorePattern
	exclusion bool // a "!" line: it brings back what earlier lines excluded
	m         *patternmatcher.PatternMatcher
}

func compileIgnore(f IgnoreFile) []ignoreLine {
	var lines []ignoreLine
	for _, p := range f.Patterns {
		pattern, exclusion := strings.CutPrefix(p.Pattern, "!")
		if m, err := patternmatcher.New([]string{pattern}); err == nil { // the whole list compiled
			lines = append(lines, ignoreLine{IgnorePattern: p, exclusion: exclusion, m: m})
		}
	}
	return lines
}

// lastIgnoreLine is the line that excludes p, as Docker reads the file (the last line matching
// p or a directory above it wins; a "!" line brings it back); nil when p is not excluded.
func lastIgnoreLine(lines []ignoreLine, p string) *ignoreLine {
	var last *ignoreLine
	for i := range lines {
		if matches(lines[i].m, p) {
			if lines[i].exclusion {
				last = nil
			} else {
				last = &lines[i]
			}
		}
	}
	return last
}

func matches(m *patternmatcher.PatternMatcher, p string) bool {
	ok, _ := m.MatchesOrParentMatches(p) // patterns were validated by New
	return ok
}

func below(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}
