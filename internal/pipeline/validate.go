package pipeline

import (
	"fmt"

	"github.com/runtimebuild/runtimebuild/internal/preflight"
	"github.com/runtimebuild/runtimebuild/internal/progress"
)

// ProblemsError reports the problems on the log and returns the error that stops the run.
func ProblemsError(log *progress.Log, rep preflight.Report) error {
	return problemsError(log, rep, "nothing was sent")
}

func problemsError(log *progress.Log, rep preflight.Report, what string) error {
	for _, p := range rep.Problems {
		log.Errorf("%s", p)
	}
	return fmt.Errorf("the Dockerfile has %d problem(s) (listed above); %s", len(rep.Problems), what)
}
