package pipeline

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/pgzip"

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/preflight"
	"github.com/runtimebuild/runtimebuild/internal/progress"
)

// Validate checks the Dockerfile that Context would pack against the files it would pack,
// without writing or sending anything.
func Validate(ctx context.Context, cfg config.Config, log *progress.Log) (preflight.Report, error) {
	plan, err := NewPlan(ctx, cfg, log)
	if err != nil {
		return preflight.Report{}, err
	}
	entries, err := selectEntries(ctx, plan, log)
	if err != nil {
		return preflight.Report{}, err
	}
	df, err := dockerfileEntry(plan, entries)
	if err != nil {
		return preflight.Report{}, err
	}
	entries, _ = buildctx.Replace(entries, df)
	files := make([]string, 0, len(entries))
	for _, e := range entries {
		files = append(files, e.Name)
	}
	return checkDockerfile(cfg, df.Data, files), nil
}

// validateArchive checks the Dockerfile of a packed archive against the archive's own listing:
// exactly what an upload would send.
func validateArchive(ctx context.Context, cfg config.Config, archive string) (preflight.Report, error) {
	f, err := os.Open(archive)
	if err != nil {
		return preflight.Report{}, err
	}
	defer f.Close()
	zr, err := pgzip.NewReader(f)
	if err != nil {
		return preflight.Report{}, fmt.Errorf("reading %s: %w", archive, err)
	}
	defer zr.Close()
	var files []string
	var df []byte
	tr := tar.NewReader(zr)
	for {
		if err := ctx.Err(); err != nil {
			return preflight.Report{}, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return preflight.Report{}, fmt.Errorf("reading %s: %w", archive, err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		files = append(files, name)
		if name == "Dockerfile" {
			if df, err = io.ReadAll(io.LimitReader(tr, 1<<20)); err != nil {
				return preflight.Report{}, err
			}
		}
	}
	return checkDockerfile(cfg, df, files), nil
}

func checkDockerfile(cfg config.Config, df []byte, files []string) preflight.Report {
	rules := buildctx.Rules{Include: cfg.Include}
	if rel, ok := within(cfg.SourceDir, cfg.OutputDir); ok {
		rules.Exclude = []string{rel}
	}
	target := cfg.Target
	if cfg.Dockerfile != "" {
		target = "" // a Dockerfile of the source need not have our stage names
	}
	return preflight.Check(df, preflight.Context{Files: files, Target: target, Excluded: buildctx.NewExplainer(cfg.SourceDir, rules).Why})
}

// ProblemsError reports the problems on the log and returns the error that stops the run.
func ProblemsError(log *progress.Log, rep preflight.Report) error {
	for _, p := range rep.Problems {
		log.Warnf("%s", p)
	}
	return fmt.Errorf("the Dockerfile has %d problem(s) (listed above); nothing was sent", len(rep.Problems))
}
