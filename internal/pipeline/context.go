// Package pipeline joins the internal packages into the jobs the targets run: pack a build
// context, upload it, follow the build. Each job is a plain function returning an error.
package pipeline

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/dockerfile"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/gitinfo"
	"github.com/runtimebuild/runtimebuild/internal/imagename"
	"github.com/runtimebuild/runtimebuild/internal/outputdir"
	"github.com/runtimebuild/runtimebuild/internal/preflight"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
)

// Plan is everything decided about a run before anything is written: the source, its commit
// and ref, the Dockerfile and its standalone rendering, the files, the check, the names. It is
// built once (newPlan) and handed along: Context packs it, Upload sends what Context produced.
type Plan struct {
	Config    config.Config
	SourceDir string // SOURCE_DIR, or the top of the git work tree holding the current directory
	Commit    gitinfo.Commit
	InGit     bool
	Ref       string    // the git ref: SDK_REF, else GITHUB_REF, else the current branch, else "unknown"
	MTime     time.Time // stored in every archive entry
	Archive   string    // OUTPUT_DIR/OUTPUT_NAME

	Dockerfile Choice              // which Dockerfile, and why
	Rendered   dockerfile.Rendered // the standalone Dockerfile at the archive's root
	Target     string              // the stage the archive builds
	nameTarget string              // the target the names carry: Target, or binary for a Dockerfile's own default
	BaseImage  string              // the effective base image ("" when unknown)
	Ignore     buildctx.IgnoreFile // the ignore file that selected the files
	Rules      buildctx.Rules      // the whole selection
	Entries    []buildctx.Entry    // what the archive holds, complete and sorted
	Check      preflight.Report    // the standalone Dockerfile against Entries
	Tags       []string            // every tag of the image, the target image's first
	BaseTag    string              // the tag of Tags that names the base image ({sha7}-{base slug}[-{target}]); "" when the base is unknown
}

// newPlan decides everything about a run without writing anything: it checks SOURCE_DIR and
// OUTPUT_DIR, resolves the commit and the ref, chooses and renders the Dockerfile, selects
// the files and checks the one against the other, and names the archive and the image.
func newPlan(ctx context.Context, cfg config.Config, log *progress.Log) (Plan, error) {
	p := Plan{Config: cfg, Commit: gitinfo.Commit{SHA: gitinfo.Unknown}, SourceDir: cfg.SourceDir}
	if p.SourceDir == "" {
		p.SourceDir = "."
		if top, err := gitinfo.TopLevel(ctx, "."); err == nil {
			p.SourceDir = top
		} else if ctx.Err() != nil {
			return Plan{}, ctx.Err()
		}
	}
	fi, err := os.Stat(p.SourceDir)
	if err != nil || !fi.IsDir() {
		return Plan{}, exitcode.Usagef("SOURCE_DIR=%q is not a directory", p.SourceDir)
	}
	if err := checkOutputDir(p.SourceDir, cfg); err != nil {
		return Plan{}, err
	}
	head, err := gitinfo.Head(ctx, p.SourceDir)
	switch {
	case err == nil:
		p.Commit, p.InGit = head, true
	case errors.Is(err, gitinfo.ErrNotRepository):
		if cfg.SHAOverride == "" {
			log.Warnf("%s is not a git checkout: the SHA is %q and every file below it is packed", p.SourceDir, gitinfo.Unknown)
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
	p.Ref = cfg.GitRef
	if p.Ref == "" && p.InGit {
		if b, err := gitinfo.Branch(ctx, p.SourceDir); err == nil {
			p.Ref = b
		}
	}
	if p.Ref == "" {
		p.Ref = gitinfo.Unknown
	}
	switch {
	case cfg.SourceDateEpoch != nil:
		p.MTime = time.Unix(*cfg.SourceDateEpoch, 0).UTC()
	case !p.Commit.Time.IsZero():
		p.MTime = p.Commit.Time
	default:
		p.MTime = time.Unix(0, 0).UTC()
	}

	if p.Dockerfile, err = chooseDockerfile(p.SourceDir, cfg); err != nil {
		return Plan{}, err
	}
	log.Infof("Dockerfile: %s (%s)", p.Dockerfile.Name(), p.Dockerfile.Why)
	if p.Ignore, err = buildctx.LoadIgnore(p.SourceDir, p.Dockerfile.Path); err != nil {
		return Plan{}, exitcode.AsUsage(err)
	}
	p.Rules = buildctx.Rules{DockerIgnore: p.Ignore.Strings(), IgnoreFile: p.Ignore.Path, Include: cfg.Include}
	if rel, ok := within(p.SourceDir, cfg.OutputDir); ok {
		p.Rules.Exclude = []string{rel}
	}
	entries, err := selectEntries(ctx, p, log)
	if err != nil {
		return Plan{}, err
	}
	if err := p.render(ctx, entries, log); err != nil {
		return Plan{}, err
	}
	p.Entries = p.archiveEntries(entries, log)

	files := make([]string, 0, len(p.Entries))
	for _, e := range p.Entries {
		files = append(files, e.Name)
	}
	p.Check = preflight.CheckParsed(p.Rendered.Model, preflight.Context{
		File: p.Dockerfile.Name(), Files: files, Target: p.Rendered.Target, Args: p.Rendered.Args, TargetSetting: "TARGET",
		Excluded: whyExcluded(buildctx.NewExplainer(p.SourceDir, p.Ignore, p.Rules)),
	})
	for _, w := range p.Check.Warnings { // problems in stages a build of the archive skips
		log.Warnf("%s", w)
	}

	primary := imagename.Primary(p.nameInput())
	if cfg.TargetImage != "" {
		if primary, err = imagename.Tag(cfg.TargetImage); err != nil {
			return Plan{}, exitcode.Usagef("TARGET_IMAGE=%q: %v", cfg.TargetImage, err)
		}
	}
	tags, err := imagename.Tags(p.nameInput())
	if err != nil {
		return Plan{}, exitcode.Usagef("naming the image: %v; shorten CUSTOM_TAGS (or the tag name of SDK_REF/GITHUB_REF)", err)
	}
	p.Tags = append([]string{primary}, slices.DeleteFunc(tags, func(t string) bool { return t == primary })...)
	p.BaseTag, _ = imagename.BaseTag(p.nameInput())
	name := cfg.OutputName
	if name == "" {
		name = fmt.Sprintf("%s-%s-%s%s.tar.gz", strings.ReplaceAll(cfg.ImageName, "/", "-"), p.Commit.Short(), cfg.PrimaryTag(), imagename.Suffix(p.nameTarget))
	}
	p.Archive = filepath.Join(cfg.OutputDir, name)
	return p, nil
}

func (p Plan) nameInput() imagename.Input {
	return imagename.Input{SHA: p.Commit.SHA, Target: p.nameTarget, Tags: p.Config.Tags, Ref: p.Ref, BaseImage: p.BaseImage}
}

// Choice is the Dockerfile of a run.
type Choice struct {
	Path string // slash path inside the source; empty for the template
	Why  string // for the log
}

// Name is how messages name the Dockerfile.
func (c Choice) Name() string {
	if c.Path == "" {
		return "Dockerfile (generated)"
	}
	return c.Path
}

// agentServerDockerfiles are the agent server's own Dockerfiles, in the order DOCKERFILE=auto
// looks for them after the root Dockerfile.
var agentServerDockerfiles = []string{
	"openhands-agent-server/openhands/agent_server/docker/Dockerfile",
	"openhands/agent_server/docker/Dockerfile",
}

// chooseDockerfile applies DOCKERFILE: auto (the root Dockerfile, else the agent server's,
// else the template), generated, or a path inside the source.
func chooseDockerfile(root string, cfg config.Config) (Choice, error) {
	isFile := func(rel string) bool {
		fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
		return err == nil && fi.Mode().IsRegular()
	}
	switch cfg.Dockerfile {
	case config.DockerfileGenerated:
		return Choice{Why: "DOCKERFILE=generated"}, nil
	case config.DockerfileAuto:
		if cfg.DockerfileTmpl != "" {
			return Choice{Why: "DOCKERFILE_TEMPLATE is set"}, nil
		}
		for _, c := range append([]string{"Dockerfile"}, agentServerDockerfiles...) {
			if isFile(c) {
				why := "DOCKERFILE=auto: the source's root Dockerfile"
				if c != "Dockerfile" {
					why = "DOCKERFILE=auto: no root Dockerfile; the agent server's own"
				}
				return Choice{Path: c, Why: why}, nil
			}
		}
		return Choice{Why: "DOCKERFILE=auto: neither a root Dockerfile nor the agent server's (" + strings.Join(agentServerDockerfiles, ", ") + ")"}, nil
	}
	rel, err := buildctx.NormalizePath(cfg.Dockerfile)
	if err != nil {
		return Choice{}, exitcode.Usagef("DOCKERFILE=%q: %v (it is auto, generated, or a path inside SOURCE_DIR)", cfg.Dockerfile, err)
	}
	if !isFile(rel) {
		return Choice{}, exitcode.Usagef("DOCKERFILE=%q: no such file in SOURCE_DIR=%q (it is auto, generated, or a path inside SOURCE_DIR)", cfg.Dockerfile, root)
	}
	return Choice{Path: rel, Why: "DOCKERFILE=" + cfg.Dockerfile}, nil
}

// checkOutputDir refuses output directories that would swallow the source or, when cleaning,
// directories too precious to clean.
func checkOutputDir(sourceDir string, cfg config.Config) error {
	src, err := filepath.Abs(sourceDir)
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
		what := "your home directory"
		if out == string(filepath.Separator) {
			what = "the root directory"
		}
		return exitcode.Usagef("OUTPUT_DIR=%q is %s; CLEAN_OUTPUT=true refuses to clean it: choose a directory of its own", cfg.OutputDir, what)
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

// A progress meter is what packing reports to.
var _ buildctx.Progress = (*progress.Meter)(nil)

// Packed is the outcome of Context.
type Packed struct {
	Plan    Plan
	Archive buildctx.Archive
	Result  result.Result
}

// Context plans the run and packs the plan's files into its reproducible archive, with the
// standalone Dockerfile at the root. A Dockerfile that cannot build with these files stops it
// before anything is written.
func Context(ctx context.Context, cfg config.Config, log *progress.Log) (Packed, error) {
	plan, err := newPlan(ctx, cfg, log)
	if err != nil {
		return Packed{}, err
	}
	if !plan.Check.OK() {
		return Packed{}, problemsError(log, plan.Check, "nothing was sent or written")
	}
	run, err := outputdir.Open(cfg.OutputDir) // another run's CLEAN_OUTPUT keeps what this one writes
	if err != nil {
		return Packed{}, fmt.Errorf("OUTPUT_DIR: %w", err)
	}
	defer func() { run.Close() }() // unless handed over to upload, below
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
	size, files := buildctx.Totals(plan.Entries)
	log.Infof("packing %d files (%s) of %s at %s (TARGET=%s)", files, progress.Bytes(size), plan.SourceDir, plan.Commit.Short(), plan.Target)
	meter := log.Meter("packing", size, files)
	archive, err := buildctx.Write(ctx, filepath.Dir(plan.Archive), filepath.Base(plan.Archive), plan.Entries, plan.MTime, meter)
	meter.Done()
	if err != nil {
		return Packed{}, settingError(err)
	}
	for _, w := range archive.Warnings {
		log.Warnf("%s", w)
	}
	res := result.Result{
		SHA: plan.Commit.SHA, ShortSHA: plan.Commit.Short(), Ref: plan.Ref, Target: plan.Target, BaseImage: plan.BaseImage,
		Dockerfile: plan.Dockerfile.Name(), Tags: plan.Tags, Files: archive.Files, BytesIn: archive.BytesIn, BytesOut: archive.BytesOut,
		SHA256: archive.SHA256,
	}
	if err := result.Write(archive.Path, res); err != nil {
		os.Remove(archive.Path) // nothing half-written: an archive without its result file is not ours to clean
		return Packed{}, fmt.Errorf("writing the result file: %w", err)
	}
	if err := result.AppendGitHubOutput(cfg.GitHubOutput, [2]string{"context", archive.Path}, [2]string{"sha256", archive.SHA256},
		[2]string{"tags", strings.Join(plan.Tags, ",")}); err != nil {
		log.Warnf("%v", err)
	}
	packed := Packed{Plan: plan, Archive: archive, Result: res}
	if h, ok := ctx.Value(handOverKey{}).(*handOver); ok {
		h.set(packed, run)
		run = nil
	}
	return packed, nil
}

// selectEntries applies git, the ignore file, the default excludes and INCLUDE, then checks
// for secrets and dirty files.
func selectEntries(ctx context.Context, plan Plan, log *progress.Log) ([]buildctx.Entry, error) {
	cfg := plan.Config
	candidates, inGit, err := buildctx.Candidates(ctx, plan.SourceDir, cfg.IncludeUntracked)
	if err != nil {
		return nil, fmt.Errorf("listing the files of %s: %w", plan.SourceDir, err)
	}
	if len(plan.Rules.Exclude) > 0 && inGit {
		warnTrackedInOutputDir(ctx, plan, log)
	}
	paths, err := buildctx.Filter(candidates, plan.Rules)
	if err != nil {
		return nil, settingError(err)
	}
	entries, warnings, err := buildctx.Scan(plan.SourceDir, paths)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		log.Warnf("%s", w)
	}
	if len(entries) == 0 {
		return nil, exitcode.Usagef("nothing to pack in SOURCE_DIR=%q: no file is left after git, %s and INCLUDE", plan.SourceDir, ignoreName(plan.Ignore))
	}
	entries, unmatched, err := buildctx.GuardSecrets(entries, cfg.AllowSecrets)
	for _, p := range unmatched {
		log.Warnf("%s", unmatchedAllowWarning(p))
	}
	if err != nil {
		return nil, settingError(err)
	}
	if inGit && !plan.Commit.Time.IsZero() { // a HEAD to compare with
		if n, err := dirtyCount(ctx, plan, entries); err != nil {
			log.Warnf("could not compare the work tree with HEAD: %v", err)
		} else if n > 0 {
			log.Warnf("%d packed file(s) differ from HEAD %s: the archive is not exactly that commit", n, plan.Commit.Short())
		}
	}
	return entries, nil
}

// warnTrackedInOutputDir says when OUTPUT_DIR, never packed, holds files git tracks.
func warnTrackedInOutputDir(ctx context.Context, plan Plan, log *progress.Log) {
	tracked, err := gitinfo.TrackedFiles(ctx, plan.SourceDir)
	if err != nil {
		return // the selection lists them again and says what went wrong
	}
	dir := plan.Rules.Exclude[0]
	var inside []string
	for _, f := range tracked {
		if f == dir || strings.HasPrefix(f, dir+"/") {
			inside = append(inside, f)
		}
	}
	if len(inside) > 0 {
		log.Warnf("OUTPUT_DIR=%q lies inside SOURCE_DIR and holds %d file(s) git tracks (%s): they are not packed; choose an OUTPUT_DIR outside the source, or move them",
			plan.Config.OutputDir, len(inside), inside[0])
	}
}

func ignoreName(f buildctx.IgnoreFile) string {
	if f.Path == "" {
		return ".dockerignore"
	}
	return f.Path
}

func dirtyCount(ctx context.Context, plan Plan, entries []buildctx.Entry) (int, error) {
	changed, err := gitinfo.ChangedFiles(ctx, plan.SourceDir)
	if err != nil {
		return 0, err
	}
	if plan.Config.IncludeUntracked {
		untracked, err := gitinfo.UntrackedFiles(ctx, plan.SourceDir)
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

// render reads the chosen Dockerfile (or renders the template for the selected files) and
// makes it standalone for the plan's TARGET, build args and labels.
func (p *Plan) render(ctx context.Context, entries []buildctx.Entry, log *progress.Log) error {
	cfg := p.Config
	var src []byte
	if p.Dockerfile.Path != "" {
		var err error
		if src, err = os.ReadFile(filepath.Join(p.SourceDir, filepath.FromSlash(p.Dockerfile.Path))); err != nil {
			return fmt.Errorf("reading the Dockerfile %s: %w", p.Dockerfile.Path, unwrapPath(err))
		}
	} else {
		if !slices.Contains(config.Targets, cfg.Target) && cfg.DockerfileTmpl == "" {
			return exitcode.Usagef("TARGET=%q is not a stage of the built-in template: want one of %s (%s)", cfg.Target, strings.Join(config.Targets, ", "), p.Dockerfile.Why)
		}
		var text string
		if cfg.DockerfileTmpl != "" {
			b, err := os.ReadFile(cfg.DockerfileTmpl)
			if err != nil {
				return exitcode.Usagef("DOCKERFILE_TEMPLATE=%q: %v", cfg.DockerfileTmpl, unwrapPath(err))
			}
			text = string(b)
		}
		base := cfg.BaseImage
		if base == "" {
			base = config.TemplateBaseImage
		}
		var err error
		src, err = dockerfile.Render(text, dockerfile.Data{
			SHA: p.Commit.SHA, ShortSHA: p.Commit.Short(), Target: cfg.Target, Targets: config.Targets,
			Tags: cfg.Tags, BaseImage: base, ImageName: cfg.ImageName, Files: buildctx.Names(entries),
		})
		if err != nil {
			return settingError(err)
		}
	}
	opt := dockerfile.Options{Args: map[string]string{}, IfDeclared: map[string]string{
		"OPENHANDS_BUILD_GIT_SHA": p.Commit.SHA, "OPENHANDS_BUILD_GIT_REF": p.Ref,
	}}
	if cfg.BaseImage != "" {
		opt.IfDeclared["BASE_IMAGE"] = cfg.BaseImage
	}
	for _, a := range cfg.BuildArgs {
		opt.Args[a.Name] = a.Value
	}
	model, err := dockerfile.Parse(src) // the one parse of the run: rendering and the check read it
	if err != nil {
		return p.renderError(err)
	}
	if cfg.BaseImage != "" && !slices.Contains(model.Declared, "BASE_IMAGE") {
		log.Warnf("BASE_IMAGE=%q is not used: %s declares no ARG BASE_IMAGE", cfg.BaseImage, p.Dockerfile.Name())
	}
	p.nameTarget = cfg.Target
	if i, err := model.Stage(cfg.Target); err == nil && cfg.Target != "" {
		p.nameTarget = model.Names[i] // as BuildKit names it
		opt.Target = model.Names[i]
	} else if cfg.TargetSet || p.Dockerfile.Path == "" {
		opt.Target = cfg.Target // not a stage: Standalone says so, listing them
	}
	// else TARGET is unset and the Dockerfile has no binary stage: its own last stage, with the default names.
	primary := imagename.Primary(p.nameInput())
	if cfg.TargetImage != "" {
		primary, _ = imagename.Tag(cfg.TargetImage)
	}
	sum := sha256.Sum256(src)
	opt.Labels = [][2]string{
		{"org.opencontainers.image.revision", p.Commit.SHA},
		{"org.opencontainers.image.version", primary},
		{"org.opencontainers.image.created", p.MTime.UTC().Format(time.RFC3339)},
	}
	if p.InGit {
		if u, err := gitinfo.SourceURL(ctx, p.SourceDir); err == nil && u != "" {
			opt.Labels = append(opt.Labels, [2]string{"org.opencontainers.image.source", u})
		}
	}
	opt.Labels = append(opt.Labels, [2]string{"dev.runtimebuild.dockerfile", p.Dockerfile.Name() + "@sha256:" + hex.EncodeToString(sum[:])})
	if p.Rendered, err = model.Standalone(opt); err != nil {
		return p.renderError(err)
	}
	p.Target, p.BaseImage = p.Rendered.Target, p.Rendered.BaseImage
	return nil
}

// renderError names the variables and the Dockerfile behind a rendering error.
func (p *Plan) renderError(err error) error {
	var ut *dockerfile.UnknownTargetError
	var ua *dockerfile.UndeclaredArgsError
	var pe *dockerfile.ParseError
	switch {
	case errors.As(err, &ut):
		return exitcode.Usagef("TARGET=%q is not a stage of %s: want one of %s", ut.Target, p.Dockerfile.Name(), strings.Join(ut.Stages, ", "))
	case errors.As(err, &ua):
		return exitcode.Usagef("BUILD_ARGS names %s, which %s does not declare (its ARGs: %s); a build arg it does not declare cannot be passed",
			strings.Join(ua.Names, ", "), p.Dockerfile.Name(), strings.Join(ua.Declared, ", "))
	case errors.As(err, &pe):
		return fmt.Errorf("%s:%d: %v", p.Dockerfile.Name(), pe.Line, pe) // the Dockerfile is wrong, not the call
	}
	return fmt.Errorf("%s: %w", p.Dockerfile.Name(), err)
}

// archiveEntries are the selected entries with the standalone Dockerfile at the root, the
// chosen Dockerfile at its own path, and an ignore file a builder of the archive reads as
// the selection did.
func (p *Plan) archiveEntries(entries []buildctx.Entry, log *progress.Log) []buildctx.Entry {
	root := buildctx.Entry{Name: "Dockerfile", Type: tar.TypeReg, Mode: 0o644, Data: p.Rendered.Dockerfile}
	entries, replaced := buildctx.Replace(entries, root)
	if replaced && p.Dockerfile.Path != "Dockerfile" {
		log.Infof("the source's root Dockerfile is replaced in the archive by the standalone one made from %s", p.Dockerfile.Name())
	}
	if path := p.Dockerfile.Path; path != "" && path != "Dockerfile" && !buildctx.Names(entries)[path] {
		entries = append(entries, buildctx.Entry{Name: path, Type: tar.TypeReg, Mode: 0o644, Source: filepath.Join(p.SourceDir, filepath.FromSlash(path)), Size: fileSize(p.SourceDir, path)})
	}
	// BuildKit reads Dockerfile.dockerignore before .dockerignore for the root Dockerfile.
	const own = "Dockerfile.dockerignore"
	switch {
	case p.Ignore.Path == own:
	case p.Ignore.Path != ".dockerignore" && p.Ignore.Path != "":
		data, err := os.ReadFile(filepath.Join(p.SourceDir, filepath.FromSlash(p.Ignore.Path)))
		if err == nil {
			entries, _ = buildctx.Replace(entries, buildctx.Entry{Name: own, Type: tar.TypeReg, Mode: 0o644, Data: data})
		}
	default:
		entries = slices.DeleteFunc(entries, func(e buildctx.Entry) bool { return e.Name == own })
	}
	return buildctx.Complete(entries)
}

func fileSize(root, rel string) int64 {
	fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// unwrapPath drops the path from an *fs.PathError: the message already names the variable.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
