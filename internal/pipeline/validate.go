package pipeline

import (
	"context"
	"fmt"

	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/preflight"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/targz"
)

// Validate plans the run as Context would and returns the check of its standalone Dockerfile
// against its files, without writing or sending anything.
func Validate(ctx context.Context, cfg config.Config, log *progress.Log) (preflight.Report, error) {
	plan, err := newPlan(ctx, cfg, log)
	if err != nil {
		return preflight.Report{}, err
	}
	return plan.Check, nil
}

// maxDockerfile is the largest Dockerfile read from an archive; a larger one is an error, never cut.
const maxDockerfile = 16 << 20

// checkArchive checks the Dockerfile of a packed archive against the archive's own listing:
// exactly what an upload would send. dockerfile names the source Dockerfile in problems.
func checkArchive(ctx context.Context, archive, dockerfile string) (preflight.Report, error) {
	l, err := targz.List(ctx, archive, []string{"Dockerfile"}, maxDockerfile)
	if err != nil {
		return preflight.Report{}, fmt.Errorf("reading %s: %w", archive, err)
	}
	return preflight.Check(l.Files["Dockerfile"], preflight.Context{File: dockerfile, Files: l.Names, TargetSetting: "TARGET"}), nil
}

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
