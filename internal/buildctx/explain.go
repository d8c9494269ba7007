package buildctx

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Reason is the rule of the selection that left a path out.
type Reason int

// The reasons a path of the source is not packed.
const (
	NotExcluded    Reason = iota // not a path of the source, or packed
	InExcludedDir                // below a directory of Rules.Exclude
	IgnoredByFile                // a pattern of the ignore file
	DefaultExclude               // defaultExcludes
	NotIncluded                  // no pattern of Rules.Include matches it
	Untracked                    // git does not track it (and untracked files were not asked for)
	GitIgnored                   // git ignores it (.gitignore, .git/info/exclude, core.excludesFile)
	NotRegular                   // neither a file nor a link on disk (a submodule, a FIFO, a device)
	Missing                      // git tracks it, but the work tree no longer has it
	HostCannotHold               // this system cannot hold a file of that name (Windows)
)

// Exclusion is why a path of the source is not packed: the reason and the rule's facts. The
// caller words the reasons that name a setting (InExcludedDir, NotIncluded, Untracked).
type Exclusion struct {
	Reason  Reason
	File    string   // IgnoredByFile: the ignore file's path
	Line    int      // IgnoredByFile: the pattern's line, 0 when it could not be told
	Pattern string   // IgnoredByFile: the pattern
	Include []string // NotIncluded: the include patterns
	Detail  string   // NotRegular, HostCannotHold: what the file is, or why the system refuses its name
}

// String words the exclusions that need no setting named ("excluded by .dockerignore line
// 2: docs"); it is "" for the others.
func (x Exclusion) String() string {
	switch x.Reason {
	case IgnoredByFile:
		file := x.File
		if file == "" {
			file = ".dockerignore"
		}
		if x.Line == 0 {
			return fmt.Sprintf("excluded by %s: %s", file, x.Pattern)
		}
		return fmt.Sprintf("excluded by %s line %d: %s", file, x.Line, x.Pattern)
	case DefaultExclude:
		return "excluded by the default excludes (caches, .git, node_modules)"
	case GitIgnored:
		return "ignored by git (.gitignore)"
	case NotRegular:
		return "not a regular file or link: " + x.Detail
	case Missing:
		return "git tracks it, but it is missing from the work tree"
	case HostCannotHold:
		return "this system cannot hold a file of that name: " + x.Detail
	}
	return ""
}

// Why returns why p (a slash path relative to the root) is not packed, as the selection
// recorded it: p's own record, a directory's above it (git ignores "node_modules/" whole), or,
// for a directory, the record of the first path below it. Its Reason is NotExcluded when
// nothing of p was left out (p is packed, or not in the source).
func (s *Selection) Why(p string) Exclusion {
	if x, ok := s.dropped[p]; ok {
		return x
	}
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if x, ok := s.dropped[d+"/"]; ok {
			return x
		}
	}
	dir := strings.TrimSuffix(p, "/") + "/"
	if i := sort.SearchStrings(s.keys, dir); i < len(s.keys) && strings.HasPrefix(s.keys[i], dir) {
		return s.dropped[s.keys[i]]
	}
	return Exclusion{}
}

// index sorts the recorded paths for Why, once the selection is done.
func (s *Selection) index() {
	s.keys = make([]string, 0, len(s.dropped))
	for k := range s.dropped {
		s.keys = append(s.keys, k)
	}
	sort.Strings(s.keys)
}
