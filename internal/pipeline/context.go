// Package pipeline joins the internal packages into the jobs the targets run, in order: Pack a
// build context, Send it, follow the build. Each job is a plain function returning an error;
// the targets call them one after the other and hand each the value the one before returned.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/gitinfo"
	"github.com/runtimebuild/runtimebuild/internal/outputdir"
	"github.com/runtimebuild/runtimebuild/internal/preflight"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
)

// A progress meter is what packing reports to.
var _ buildctx.Progress = (*progress.Meter)(nil)

// ContentTagPrefix starts the content tag every build carries: ctx- and the first 16 hex
// digits of the archive's sha256. The archive's Dockerfile bakes BUILD_ARGS, BASE_IMAGE, the
// SHA and the ref, so the digest names every input of the build: /image_exists is asked for
// this tag, and only the same archive finds an image.
const ContentTagPrefix = "ctx-"

// ContentTag is the content tag of an archive with this sha256 (hex).
func ContentTag(sha256hex string) string { return ContentTagPrefix + sha256hex[:16] }

// Packed is the outcome of Pack: the plan, the archive written, its result file, and the hold
// that keeps another run's CLEAN_OUTPUT away from the archive until Release.
type Packed struct {
	Plan       Plan
	Archive    buildctx.Archive
	Result     result.Result
	ContentTag string   // ContentTag of the archive
	Tags       []string // the plan's tags and the content tag
	hold       *outputdir.Run
}

// Release lets other runs clean the archive again; Send calls it when it is done.
func (p Packed) Release() {
	if p.hold != nil {
		p.hold.Close()
	}
}

// NewPlan gathers the facts of a run and decides it, without writing anything: what Pack will
// write and Validate checks.
func NewPlan(ctx context.Context, s config.Pack, log *progress.Log) (Plan, error) {
	facts, err := gather(ctx, s, log)
	if err != nil {
		return Plan{}, err
	}
	plan, notes, err := decide(s, facts)
	for _, n := range notes {
		if n.Warn {
			log.Warnf("%s", n.Text)
		} else {
			log.Infof("%s", n.Text)
		}
	}
	return plan, err
}

// Pack plans the run and packs the plan's files into its reproducible archive, with the
// standalone Dockerfile at the root; with CLEAN_OUTPUT, this tool's earlier archives and their
// result files go once the new archive and its result file are complete. A Dockerfile that
// cannot build with these files stops it before anything is written. The caller releases the
// returned value's hold (Release) when it is done with the archive.
func Pack(ctx context.Context, s config.Pack, githubOutput string, log *progress.Log) (Packed, error) {
	plan, err := NewPlan(ctx, s, log)
	if err != nil {
		return Packed{}, err
	}
	if !plan.Check.OK() {
		return Packed{}, problemsError(log, plan.Check, "nothing was sent or written")
	}
	dir := filepath.Dir(plan.Archive)
	hold, err := outputdir.Open(dir) // another run's CLEAN_OUTPUT keeps what this one writes
	if err != nil {
		return Packed{}, fmt.Errorf("OUTPUT_DIR: %w", err)
	}
	packed := Packed{Plan: plan, hold: hold}
	done := false
	defer func() {
		if !done { // the hold goes with the value returned, or now
			hold.Close()
		}
	}()
	if err := hold.Hold(filepath.Base(plan.Archive)); err != nil {
		return Packed{}, err
	}
	size, files := buildctx.Totals(plan.Entries)
	log.Infof("packing %d files (%s) of %s at %s (TARGET=%s)", files, progress.Bytes(size), plan.SourceDir, plan.Commit.Short(), plan.Target)
	meter := log.Meter("packing", size, files)
	archive, err := buildctx.Write(ctx, dir, filepath.Base(plan.Archive), plan.Entries, plan.MTime, meter)
	meter.Done()
	if errors.Is(err, context.Canceled) {
		return Packed{}, &InterruptedError{Advice: "nothing was written"}
	}
	if err != nil {
		return Packed{}, settingError(err)
	}
	for _, w := range archive.Warnings {
		log.Warnf("%s", w)
	}
	packed.Archive, packed.ContentTag = archive, ContentTag(archive.SHA256)
	packed.Tags = append(append([]string(nil), plan.Tags...), packed.ContentTag)
	packed.Result = result.Result{
		SHA: plan.Commit.SHA, ShortSHA: plan.Commit.Short(), Ref: plan.Ref, Target: plan.Target, BaseImage: plan.BaseImage,
		Dockerfile: plan.Dockerfile.Name(), Tags: packed.Tags, Files: archive.Files, BytesIn: archive.BytesIn, BytesOut: archive.BytesOut,
		SHA256: archive.SHA256,
	}
	if err := result.Write(archive.Path, packed.Result); err != nil {
		os.Remove(archive.Path) // nothing half-written: an archive without its result file is not ours to clean
		return Packed{}, fmt.Errorf("writing the result file: %w", err)
	}
	if plan.CleanOutput { // only now: a failed or interrupted run leaves the earlier archive in place
		removed, err := outputdir.Clean(dir, ownedArchives)
		if err != nil {
			log.Warnf("CLEAN_OUTPUT: %v", err)
		} else if len(removed) > 0 {
			log.Infof("removed %d earlier output file(s) from %s", len(removed), dir)
		}
	}
	if err := result.AppendGitHubOutput(githubOutput, [2]string{"context", archive.Path}, [2]string{"sha256", archive.SHA256},
		[2]string{"tags", strings.Join(packed.Tags, ",")}); err != nil {
		log.Warnf("%v", err)
	}
	done = true
	return packed, nil
}

// ownedArchives is what CLEAN_OUTPUT removes: the archives this tool packed and their result
// files. An image's result file (image writes no archive it keeps) is of another kind and stays.
func ownedArchives(dir, name string) []string {
	if !strings.HasSuffix(name, ".json") {
		return nil
	}
	r, err := result.Read(filepath.Join(dir, strings.TrimSuffix(name, ".json")))
	if err != nil || r.Generator != result.Generator || r.Archive+".json" != name || r.SHA256 == "" {
		return nil // not ours, or not an archive's
	}
	return []string{r.Archive, name}
}

// selectEntries applies git, the ignore file, the default excludes and INCLUDE, then checks
// for secrets and dirty files.
func selectEntries(ctx context.Context, s config.Pack, f *Facts, rules buildctx.Rules, log *progress.Log) ([]buildctx.Entry, *buildctx.Selection, error) {
	candidates, err := buildctx.Candidates(ctx, f.SourceDir, s.IncludeUntracked)
	if err != nil {
		return nil, nil, fmt.Errorf("listing the files of %s: %w", f.SourceDir, err)
	}
	inGit := candidates.InGit
	if len(rules.Exclude) > 0 && inGit {
		warnTrackedInOutputDir(ctx, f.SourceDir, rules.Exclude[0], s.OutputDir, log)
	}
	sel, err := buildctx.Filter(candidates, rules)
	if err != nil {
		return nil, nil, settingError(err)
	}
	entries, warnings, err := sel.Scan(f.SourceDir)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range warnings {
		log.Warnf("%s", w)
	}
	if len(entries) == 0 && f.NoCommitYet && len(candidates.Files) == 0 {
		return nil, nil, exitcode.Usagef("nothing to pack in SOURCE_DIR=%q: no commits yet: commit, or set SOURCE_DIR to a directory", f.SourceDir)
	}
	if len(entries) == 0 {
		return nil, nil, exitcode.Usagef("nothing to pack in SOURCE_DIR=%q: no file is left after git, %s and INCLUDE", f.SourceDir, ignoreName(f.Ignore))
	}
	entries, unmatched, err := buildctx.GuardSecrets(entries, s.AllowSecrets)
	for _, p := range unmatched {
		log.Warnf("%s", unmatchedAllowWarning(p))
	}
	if err != nil {
		return nil, nil, settingError(err)
	}
	if inGit && !f.Commit.Time.IsZero() { // a HEAD to compare with
		if n, err := dirtyCount(ctx, f.SourceDir, s.IncludeUntracked, entries); err != nil {
			log.Warnf("could not compare the work tree with HEAD: %v", err)
		} else if n > 0 {
			log.Warnf("%d packed file(s) differ from HEAD %s: the archive is not exactly that commit", n, f.Commit.Short())
		}
	}
	return entries, sel, nil
}

// warnTrackedInOutputDir says when OUTPUT_DIR, never packed, holds files git tracks.
func warnTrackedInOutputDir(ctx context.Context, sourceDir, dir, outputDir string, log *progress.Log) {
	tracked, err := gitinfo.TrackedFiles(ctx, sourceDir)
	if err != nil {
		return // the selection lists them again and says what went wrong
	}
	var inside []string
	for _, f := range tracked {
		if f == dir || strings.HasPrefix(f, dir+"/") {
			inside = append(inside, f)
		}
	}
	if len(inside) > 0 {
		log.Warnf("OUTPUT_DIR=%q lies inside SOURCE_DIR and holds %d file(s) git tracks (%s): they are not packed; choose an OUTPUT_DIR outside the source, or move them",
			outputDir, len(inside), inside[0])
	}
}

func ignoreName(f buildctx.IgnoreFile) string {
	if f.Path == "" {
		return ".dockerignore"
	}
	return f.Path
}

func dirtyCount(ctx context.Context, sourceDir string, untracked bool, entries []buildctx.Entry) (int, error) {
	changed, err := gitinfo.ChangedFiles(ctx, sourceDir)
	if err != nil {
		return 0, err
	}
	if untracked {
		more, err := gitinfo.UntrackedFiles(ctx, sourceDir)
		if err != nil {
			return 0, err
		}
		changed = append(changed, more...)
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

// unwrapPath drops the path from an *fs.PathError: the message already names the variable.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Validate plans the run as Pack would and returns the check of its standalone Dockerfile
// against its files, without writing or sending anything.
func Validate(ctx context.Context, s config.Pack, log *progress.Log) (preflight.Report, error) {
	plan, err := NewPlan(ctx, s, log)
	if err != nil {
		return preflight.Report{}, err
	}
	return plan.Check, nil
}
