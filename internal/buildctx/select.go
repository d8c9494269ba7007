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
	DockerIgnore []string // patterns of the ignore file (IgnoreFile.Strings), in file order
	IgnoreFile   string   // the ignore file's path, for messages (default .dockerignore)
	Include      []string // when set, only paths matching one of these (or below one)
	Exclude      []string // paths excluded with everything below them (the output directory), relative
}

// Candidates lists the files that may be packed, relative to root: the files git tracks
// (plus untracked, not ignored ones when untracked is true), or every file outside git.
// inGit says which it was.
func Candidates(ctx context.Context, root string, untracked bool) (files []string, inGit bool, err error) {
	if !gitinfo.IsRepository(ctx, root) {
		files, err = walk(ctx, root)
		return files, false, err
	}
	files, err = gitinfo.TrackedFiles(ctx, root)
	if err != nil {
		return nil, true, err
	}
	if untracked {
		more, err := gitinfo.UntrackedFiles(ctx, root)
		if err != nil {
			return nil, true, err
		}
		files = append(files, more...)
	}
	return files, true, nil
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

// Filter applies the rules to the candidate paths and returns the kept ones, normalised,
// sorted and without duplicates. A malformed pattern, or an include pattern that matches
// nothing, is a *PatternError.
func Filter(candidates []string, rules Rules) ([]string, error) {
	ignore, err := patternmatcher.New(rules.DockerIgnore)
	if err != nil {
		return nil, &PatternError{List: IgnorePatterns, File: rules.IgnoreFile, Err: err}
	}
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
	seen := make(map[string]bool, len(candidates))
	var kept []string
	for _, c := range candidates {
		p, err := NormalizePath(c)
		if err != nil {
			return nil, fmt.Errorf("selecting files: %w", err)
		}
		if seen[p] || below(p, rules.Exclude) || matches(ignore, p) || matches(defaults, p) {
			continue
		}
		seen[p] = true
		if len(includes) > 0 {
			in := false
			for i, m := range includes {
				if matches(m, p) {
					used[i], in = true, true
				}
			}
			if !in {
				continue
			}
		}
		kept = append(kept, p)
	}
	for i, u := range used {
		if !u {
			return nil, &PatternError{List: IncludePatterns, Pattern: rules.Include[i]}
		}
	}
	sort.Strings(kept)
	return kept, nil
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
