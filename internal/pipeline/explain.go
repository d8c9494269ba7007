package pipeline

import (
	"strings"

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
)

// whyExcluded words the selection's record of why a path is not packed, for the preflight
// check, naming the settings behind the rules.
func whyExcluded(sel *buildctx.Selection) func(path string) string {
	return func(path string) string {
		x := sel.Why(path)
		switch x.Reason {
		case buildctx.InExcludedDir:
			return "it is in OUTPUT_DIR"
		case buildctx.NotIncluded:
			return "not matched by INCLUDE=" + strings.Join(x.Include, ",")
		case buildctx.Untracked:
			return "not tracked by git (git add it, or set INCLUDE_UNTRACKED=true)"
		}
		return x.String()
	}
}
