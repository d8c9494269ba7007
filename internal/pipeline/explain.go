package pipeline

import (
	"strings"

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
)

// whyExcluded words the explainer's reasons for the preflight check, naming the settings
// behind the rules.
func whyExcluded(e *buildctx.Explainer) func(path string) string {
	return func(path string) string {
		x := e.Why(path)
		switch x.Reason {
		case buildctx.InExcludedDir:
			return "it is in OUTPUT_DIR"
		case buildctx.NotIncluded:
			return "not matched by INCLUDE=" + strings.Join(x.Include, ",")
		case buildctx.NotCandidate:
			return "not tracked by git (git add it, or set INCLUDE_UNTRACKED=true)"
		}
		return x.String()
	}
}
