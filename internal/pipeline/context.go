// Package pipeline joins the internal packages into the jobs the targets run: pack a build
// context, upload it, follow the build. Each job is a plain function returning an error.
package pipeline

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/dockerfile"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/gitinfo"
	"github.com/runtimebuild/runtimebuild/internal/outputdir"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
)

// Plan is what a run derives from the configuration and the checkout before touching anything.
type Plan struct {
	Config  config.Config
	Commit  gitinfo.Commit
	InGit   bool
	MTime   time.Time // stored in every archive entry
	Archive string    // OUTPUT_DIR/OUTPUT_NAME
}

// NewPlan checks SOURCE_DIR and OUTPUT_DIR and resolves the commit and the archive path.
func NewPlan(ctx context.Context, cfg config.Config, log *progress.Log) (Plan, error) {
	fi, err := os.Stat(cfg.SourceDir)
	if err != nil || !fi.IsDir() {
		return Plan{}, exitcode.Usagef("SOURCE_DIR=%q is not a directory", cfg.SourceDir)
	}
	if err := checkOutputDir(cfg); err != nil {
		return Plan{}, err
	}
	p := Plan{Config: cfg, Commit: gitinfo.Commit{SHA: gitinfo.Unknown}}
	head, err := gitinfo.Head(ctx, cfg.SourceDir)
	switch {
	case err == nil:
		p.Commit, p.InGit = head, true
	case errors.Is(err, gitinfo.ErrNotRepository):
		if cfg.SHAOverride == "" {
			log.Warnf("%s is not a git checkout: the SHA is %q and every file below it is packed", cfg.SourceDir, gitinfo.Unknown)
		}
	case ctx.Err() != nil:
		return Plan{}, ctx.Err()
	case errors.Is(err, gitinfo.ErrNoCommit):
		p.InGit = true
		if cfg.SHAOverride == "" {
			log.Warnf("%s: the SHA is %q (commit, or set SDK_SHA)", err, gitinfo.Unknown)
		}
	default:
		p.InGit = true
		log.Warnf("no commit to name the build after (%v): the SHA is %q", err, gitinfo.Unknown)
	}
	if cfg.SHAOverride != "" {
		p.Commit.SHA = cfg.SHAOverride
	}
	switch {
	case cfg.SourceDateEpoch != nil:
		p.MTime = time.Unix(*cfg.SourceDateEpoch, 0).UTC()
	case !p.Commit.Time.IsZero():
		p.MTime = p.Commit.Time
	default:
		p.MTime = time.Unix(0, 0).UTC()
	}
	name := cfg.OutputName
	if name == "" {
		name = fmt.Sprintf("%s-%s-%s.tar.gz", strings.ReplaceAll(cfg.ImageName, "/", "-"), p.Commit.Short(), cfg.PrimaryTag())
	}
	p.Archive = filepath.Join(cfg.OutputDir, name)
	return p, nil
}

// checkOutputDir refuses output directories that would swallow the source or, when cleaning,
// directories too precious to clean.
func checkOutputDir(cfg config.Config) error {
	src, err := filepath.Abs(cfg.SourceDir)
	if err != nil {
		return err
	}
	out, err := filepath.Abs(cfg.OutputDir)
	if err != nil {
		return err
	}
	src, out = resolve(src), resolve(out)
	if out == src {
		return exitcode.Usagef("OUTPUT_DIR=%q is SOURCE_DIR itself; choose a directory of its own (default ./runtime-build)", cfg.OutputDir)
	}
	if !cfg.CleanOutput {
		return nil
	}
	home, _ := os.UserHomeDir()
	if out == string(filepath.Separator) || (home != "" && out == resolve(home)) {
		return exitcode.Usagef("OUTPUT_DIR=%q is %s; CLEAN_OUTPUT=true refuses to clean it: choose a directory of its own", cfg.OutputDir, out)
	}
	return nil
}

// resolve follows symbolic links in the part of p that exists.
func resolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	dir, base := filepath.Split(p)
	if dir == "" || filepath.Clean(dir) == p {
		return p
	}
	return filepath.Join(resolve(filepath.Clean(dir)), base)
}

// Packed is the outcome of Context.
type Packed struct {
	Plan    Plan
	Archive buildctx.Archive
	Result  result.Result
}

// Context packs SOURCE_DIR into the reproducible archive of the plan, with the Dockerfile at its root.
func Context(ctx context.Context, cfg config.Config, log *progress.Log) (Packed, error) {
	plan, err := NewPlan(ctx, cfg, log)
	if err != nil {
		return Packed{}, err
	}
	entries, err := selectEntries(ctx, plan, log)
	if err != nil {
		return Packed{}, err
	}
	df, err := dockerfileEntry(plan, entries)
	if err != nil {
		return Packed{}, err
	}
	entries, replaced := buildctx.Replace(entries, df)
	if replaced {
		log.Infof("the source's own Dockerfile is replaced in the archive by the %s one", dockerfileOrigin(cfg))
	}
	entries = buildctx.Complete(entries)

	run, err := outputdir.Open(cfg.OutputDir) // another run's CLEAN_OUTPUT keeps what this one writes
	if err != nil {
		return Packed{}, fmt.Errorf("OUTPUT_DIR: %w", err)
	}
	defer run.Close()
	if err := run.Hold(filepath.Base(plan.Archive)); err != nil {
		return Packed{}, err
	}
	if cfg.CleanOutput {
		removed, err := result.Clean(cfg.OutputDir)
		if err != nil {
			return Packed{}, err
		}
		if len(removed) > 0 {
			log.Infof("removed %d earlier output file(s) from %s", len(removed), cfg.OutputDir)
		}
	}
	log.Infof("packing %d entries of %s at %s (TARGET=%s)", len(entries), cfg.SourceDir, plan.Commit.Short(), cfg.Target)
	size, files := buildctx.Totals(entries)
	meter := log.Meter("packing", size, files)
	archive, err := buildctx.Write(ctx, filepath.Dir(plan.Archive), filepath.Base(plan.Archive), entries, plan.MTime, meter)
	meter.Done()
	if err != nil {
		return Packed{}, err
	}
	for _, w := range archive.Warnings {
		log.Warnf("%s", w)
	}
	res := result.Result{
		SHA: plan.Commit.SHA, ShortSHA: plan.Commit.Short(), Target: cfg.Target, BaseImage: cfg.BaseImage,
		Tags: cfg.Tags, Files: archive.Files, BytesIn: archive.BytesIn, BytesOut: archive.BytesOut, SHA256: archive.SHA256,
	}
	if cfg.Dockerfile != "" {
		res.BaseImage = "" // the source's Dockerfile chooses its own
	}
	if err := result.Write(archive.Path, res); err != nil {
		os.Remove(archive.Path) // nothing half-written: an archive without its result file is not ours to clean
		return Packed{}, fmt.Errorf("writing the result file: %w", err)
	}
	if err := result.AppendGitHubOutput(cfg.GitHubOutput, [2]string{"context", archive.Path}, [2]string{"sha256", archive.SHA256}); err != nil {
		log.Warnf("%v", err)
	}
	return Packed{Plan: plan, Archive: archive, Result: res}, nil
}

// selectEntries applies git, .dockerignore, the default excludes and INCLUDE, then checks
// for secrets and dirty files.
func selectEntries(ctx context.Context, plan Plan, log *progress.Log) ([]buildctx.Entry, error) {
	cfg := plan.Config
	candidates, inGit, err := buildctx.Candidates(ctx, cfg.SourceDir, cfg.IncludeUntracked)
	if err != nil {
		return nil, fmt.Errorf("listing the files of %s: %w", cfg.SourceDir, err)
	}
	ignore, err := buildctx.ReadDockerIgnore(cfg.SourceDir)
	if err != nil {
		return nil, exitcode.AsUsage(err)
	}
	rules := buildctx.Rules{DockerIgnore: ignore, Include: cfg.Include}
	if rel, ok := within(cfg.SourceDir, cfg.OutputDir); ok {
		rules.Exclude = []string{rel}
	}
	paths, err := buildctx.Filter(candidates, rules)
	if err != nil {
		return nil, err
	}
	entries, warnings, err := buildctx.Scan(cfg.SourceDir, paths)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		log.Warnf("%s", w)
	}
	if len(entries) == 0 {
		return nil, exitcode.Usagef("nothing to pack in SOURCE_DIR=%q: no file is left after git, .dockerignore and INCLUDE", cfg.SourceDir)
	}
	entries, warnings, err = buildctx.GuardSecrets(entries, cfg.AllowSecrets)
	for _, w := range warnings {
		log.Warnf("%s", w)
	}
	if err != nil {
		return nil, err
	}
	if inGit && !plan.Commit.Time.IsZero() { // a HEAD to compare with
		if n, err := dirtyCount(ctx, cfg, entries); err != nil {
			log.Warnf("could not compare the work tree with HEAD: %v", err)
		} else if n > 0 {
			log.Warnf("%d packed file(s) differ from HEAD %s: the archive is not exactly that commit", n, plan.Commit.Short())
		}
	}
	return entries, nil
}

func dirtyCount(ctx context.Context, cfg config.Config, entries []buildctx.Entry) (int, error) {
	changed, err := gitinfo.ChangedFiles(ctx, cfg.SourceDir)
	if err != nil {
		return 0, err
	}
	if cfg.IncludeUntracked {
		untracked, err := gitinfo.UntrackedFiles(ctx, cfg.SourceDir)
		if err != nil {
			return 0, err
		}
		changed = append(changed, untracked...)
	}
	packed := buildctx.Names(entries)
	n := 0
	for _, c := range changed {
		if packed[c] {
			n++
		}
	}
	return n, nil
}

// within returns dir relative to root when dir lies inside root.
func within(root, dir string) (string, bool) {
	r, err1 := filepath.Abs(root)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return "", false
	}
	rel, err := filepath.Rel(resolve(r), resolve(d))
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

func dockerfileOrigin(cfg config.Config) string {
	switch {
	case cfg.Dockerfile != "":
		return "DOCKERFILE=" + cfg.Dockerfile
	case cfg.DockerfileTmpl != "":
		return "DOCKERFILE_TEMPLATE"
	}
	return "generated"
}

// dockerfileEntry is the Dockerfile at the archive root: the source's DOCKERFILE verbatim, or
// the template rendered for the plan.
func dockerfileEntry(plan Plan, entries []buildctx.Entry) (buildctx.Entry, error) {
	cfg := plan.Config
	var data []byte
	if cfg.Dockerfile != "" {
		p, err := buildctx.NormalizePath(cfg.Dockerfile)
		if err == nil {
			data, err = os.ReadFile(filepath.Join(cfg.SourceDir, filepath.FromSlash(p)))
		}
		if err != nil {
			return buildctx.Entry{}, exitcode.Usagef("DOCKERFILE=%q: %v (it is a path inside SOURCE_DIR)", cfg.Dockerfile, unwrapPath(err))
		}
	} else {
		var text string
		if cfg.DockerfileTmpl != "" {
			b, err := os.ReadFile(cfg.DockerfileTmpl)
			if err != nil {
				return buildctx.Entry{}, exitcode.Usagef("DOCKERFILE_TEMPLATE=%q: %v", cfg.DockerfileTmpl, unwrapPath(err))
			}
			text = string(b)
		}
		var err error
		data, err = dockerfile.Render(text, dockerfile.Data{
			SHA: plan.Commit.SHA, ShortSHA: plan.Commit.Short(), Target: cfg.Target, Targets: config.Targets,
			Tags: cfg.Tags, BaseImage: cfg.BaseImage, ImageName: cfg.ImageName, Files: buildctx.Names(entries),
		})
		if err != nil {
			return buildctx.Entry{}, err
		}
	}
	return buildctx.Entry{Name: "Dockerfile", Type: tar.TypeReg, Mode: 0o644, Data: data}, nil
}

// unwrapPath drops the path from an *fs.PathError: the message already names the variable.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
