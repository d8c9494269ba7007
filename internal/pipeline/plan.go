package pipeline

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
)

// Facts are what a run finds in git and on disk before anything is decided: gather collects
// them, decide turns them and the settings into a Plan without reading anything more.
type Facts struct {
	SourceDir   string // SOURCE_DIR, or the top of the git work tree holding the current directory
	Commit      gitinfo.Commit
	InGit       bool
	NoCommitYet bool   // a repository without a commit
	Branch      string // the current branch; empty when there is none
	RemoteURL   string // the origin's public URL (gitinfo.SourceURL); empty when none or not a URL

	Dockerfile       dockerfile.Choice
	DockerfileSource []byte // the chosen Dockerfile's text; nil for the template
	DockerfileSize   int64
	Template         string // DOCKERFILE_TEMPLATE's text; empty: the built-in template

	Ignore     buildctx.IgnoreFile
	IgnoreData []byte // the ignore file's content
	Selected   []buildctx.Entry
	// Excluded tells why a path of the source is not selected (for the check's messages).
	Excluded func(path string) string
}

// Plan is everything decided about a run before anything is written: the commit and ref, the
// Dockerfile and its standalone rendering, the archive's entries, the check, the names. decide
// makes it from settings and facts alone; Pack writes it and Send sends what Pack produced.
type Plan struct {
	SourceDir   string
	Commit      gitinfo.Commit
	Ref         string    // the git ref: SDK_REF, else GITHUB_REF, else the current branch, else "unknown"
	MTime       time.Time // stored in every archive entry
	Archive     string    // OUTPUT_DIR/OUTPUT_NAME
	CleanOutput bool      // remove this tool's earlier outputs once the archive is complete

	Dockerfile dockerfile.Choice
	Rendered   dockerfile.Rendered // the standalone Dockerfile at the archive's root
	Target     string              // the stage the archive builds
	BaseImage  string              // the value of ARG BASE_IMAGE, else the image the target starts from ("" when unknown)
	Entries    []buildctx.Entry    // what the archive holds, complete and sorted
	Check      preflight.Report    // the standalone Dockerfile against Entries

	ImageName   string   // the repository under the Runtime API's registry prefix
	TargetImage string   // the image named in full (TARGET_IMAGE); empty: prefix/ImageName:Tags[0]
	Tags        []string // every tag of the image, the target image's first (the content tag comes with the archive)
}

// Note is a line decide wants said: a warning or information.
type Note struct {
	Warn bool
	Text string
}

// gather collects the facts of a run: it checks SOURCE_DIR and OUTPUT_DIR, reads the commit,
// branch and remote, chooses the Dockerfile among the files there, and selects the files.
func gather(ctx context.Context, s config.Pack, log *progress.Log) (Facts, error) {
	f := Facts{Commit: gitinfo.Commit{SHA: gitinfo.Unknown}, SourceDir: s.SourceDir}
	if f.SourceDir == "" {
		f.SourceDir = "."
		if top, err := gitinfo.TopLevel(ctx, "."); err == nil {
			f.SourceDir = top
		} else if ctx.Err() != nil {
			return Facts{}, ctx.Err()
		}
	}
	fi, err := os.Stat(f.SourceDir)
	if err != nil || !fi.IsDir() {
		return Facts{}, exitcode.Usagef("SOURCE_DIR=%q is not a directory", f.SourceDir)
	}
	if err := outputDirError(outputdir.Check(f.SourceDir, s.OutputDir, s.CleanOutput), s.OutputDir); err != nil {
		return Facts{}, err
	}
	head, err := gitinfo.Head(ctx, f.SourceDir)
	switch {
	case err == nil:
		f.Commit, f.InGit = head, true
	case errors.Is(err, gitinfo.ErrNotRepository):
		if s.SHAOverride == "" {
			log.Warnf("%s is not a git checkout: the SHA is %q and every file below it is packed", f.SourceDir, gitinfo.Unknown)
		}
	case ctx.Err() != nil:
		return Facts{}, ctx.Err()
	case errors.Is(err, gitinfo.ErrNoCommit):
		f.InGit, f.NoCommitYet = true, true
		if s.SHAOverride == "" {
			log.Warnf("%s: the SHA is %q (commit, or set SDK_SHA)", err, gitinfo.Unknown)
		}
	default:
		f.InGit = true
		log.Warnf("no commit to name the build after (%v): the SHA is %q", err, gitinfo.Unknown)
	}
	if f.InGit {
		if b, err := gitinfo.Branch(ctx, f.SourceDir); err == nil {
			f.Branch = b
		}
		if u, err := gitinfo.SourceURL(ctx, f.SourceDir); err == nil {
			f.RemoteURL = u
		}
	}

	if f.Dockerfile, err = chooseDockerfile(f.SourceDir, s); err != nil {
		return Facts{}, err
	}
	if f.Ignore, err = buildctx.LoadIgnore(f.SourceDir, f.Dockerfile.Path); err != nil {
		return Facts{}, exitcode.AsUsage(err)
	}
	log.Infof("Dockerfile: %s (%s); %s", f.Dockerfile.Name(), why(f.Dockerfile, s), ignoreUsed(f.Ignore, f.Dockerfile.Path))
	if path := f.Dockerfile.Path; path != "" {
		full := filepath.Join(f.SourceDir, filepath.FromSlash(path))
		if f.DockerfileSource, err = os.ReadFile(full); err != nil {
			return Facts{}, fmt.Errorf("reading the Dockerfile %s: %w", path, unwrapPath(err))
		}
		f.DockerfileSize = int64(len(f.DockerfileSource))
	} else if s.DockerfileTmpl != "" {
		b, err := os.ReadFile(s.DockerfileTmpl)
		if err != nil {
			return Facts{}, exitcode.Usagef("DOCKERFILE_TEMPLATE=%q: %v", s.DockerfileTmpl, unwrapPath(err))
		}
		f.Template = string(b)
	}
	if f.Ignore.Path != "" {
		f.IgnoreData, _ = os.ReadFile(filepath.Join(f.SourceDir, filepath.FromSlash(f.Ignore.Path)))
	}
	rules := buildctx.Rules{Ignore: f.Ignore, Include: s.Include}
	if rel, ok := outputdir.Within(f.SourceDir, s.OutputDir); ok {
		rules.Exclude = []string{rel}
	}
	var sel *buildctx.Selection
	if f.Selected, sel, err = selectEntries(ctx, s, &f, rules, log); err != nil {
		return Facts{}, err
	}
	f.Excluded = whyExcluded(sel)
	return f, nil
}

// outputDirError words outputdir's refusal with the settings behind it.
func outputDirError(err error, dir string) error {
	var ue *outputdir.UnsafeError
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &ue):
		return err
	case ue.Reason == outputdir.IsSource:
		return exitcode.Usagef("OUTPUT_DIR=%q is SOURCE_DIR itself; choose a directory of its own (default ./runtime-build)", dir)
	case ue.Reason == outputdir.IsRoot:
		return exitcode.Usagef("OUTPUT_DIR=%q is the root directory; CLEAN_OUTPUT=true refuses to clean it: choose a directory of its own", dir)
	}
	return exitcode.Usagef("OUTPUT_DIR=%q is your home directory; CLEAN_OUTPUT=true refuses to clean it: choose a directory of its own", dir)
}

// chooseDockerfile applies DOCKERFILE: auto (the root Dockerfile, else the agent server's,
// else the template), generated, or a path inside the source.
func chooseDockerfile(root string, s config.Pack) (dockerfile.Choice, error) {
	req := dockerfile.Request{
		Auto:     s.Dockerfile == config.DockerfileAuto,
		Template: s.Dockerfile == config.DockerfileGenerated || (s.Dockerfile == config.DockerfileAuto && s.DockerfileTmpl != ""),
	}
	if !req.Auto && !req.Template {
		rel, err := buildctx.NormalizePath(s.Dockerfile)
		if err != nil {
			return dockerfile.Choice{}, exitcode.Usagef("DOCKERFILE=%q: %v (it is auto, generated, or a path inside SOURCE_DIR)", s.Dockerfile, err)
		}
		req.Path = rel
	}
	c, err := dockerfile.Choose(req, func(rel string) bool {
		fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
		return err == nil && fi.Mode().IsRegular()
	})
	var nf *dockerfile.NoSuchFileError
	if errors.As(err, &nf) {
		return c, exitcode.Usagef("DOCKERFILE=%q: no such file in SOURCE_DIR=%q (it is auto, generated, or a path inside SOURCE_DIR)", s.Dockerfile, root)
	}
	return c, err
}

// why words a Dockerfile choice with the settings behind it, for the log.
func why(c dockerfile.Choice, s config.Pack) string {
	switch {
	case c.Origin == dockerfile.FromTemplate && c.Auto && s.DockerfileTmpl != "":
		return "DOCKERFILE_TEMPLATE is set"
	case c.Origin == dockerfile.FromTemplate && c.Auto:
		return "DOCKERFILE=auto: neither a root Dockerfile nor the agent server's (" + strings.Join(dockerfile.AgentServerPaths, ", ") + ")"
	case c.Origin == dockerfile.FromTemplate:
		return "DOCKERFILE=generated"
	case c.Origin == dockerfile.FromRoot:
		return "DOCKERFILE=auto: the source's root Dockerfile"
	case c.Origin == dockerfile.FromAgentServer:
		return "DOCKERFILE=auto: no root Dockerfile; the agent server's own"
	}
	return "DOCKERFILE=" + s.Dockerfile
}

// ignoreUsed words the ignore file chosen for the Dockerfile at dockerfile ("" for the
// template), for the log: BuildKit reads <Dockerfile>.dockerignore beside it over the root's
// .dockerignore, so which one applied is worth saying.
func ignoreUsed(ignore buildctx.IgnoreFile, dockerfile string) string {
	switch {
	case ignore.Path == "" && dockerfile == "":
		return "no ignore file (no .dockerignore)"
	case ignore.Path == "":
		return "no ignore file (neither " + dockerfile + ".dockerignore nor .dockerignore)"
	case ignore.Path == ".dockerignore":
		return "ignore file: .dockerignore"
	}
	return "ignore file: " + ignore.Path + " (beside the Dockerfile: BuildKit reads it instead of .dockerignore)"
}

// decide makes the plan from the settings and the facts: the ref and timestamp, the standalone
// Dockerfile, the archive's entries and their check, and the names. It reads and writes
// nothing; what it wants said comes back as notes.
func decide(s config.Pack, f Facts) (Plan, []Note, error) {
	p := Plan{SourceDir: f.SourceDir, Commit: f.Commit, Dockerfile: f.Dockerfile, CleanOutput: s.CleanOutput, ImageName: s.ImageName, TargetImage: s.TargetImage}
	if s.SHAOverride != "" {
		p.Commit.SHA = s.SHAOverride
	}
	p.Ref = cmp.Or(s.GitRef, f.Branch, gitinfo.Unknown)
	switch {
	case s.SourceDateEpoch != nil:
		p.MTime = time.Unix(*s.SourceDateEpoch, 0).UTC()
	case !p.Commit.Time.IsZero():
		p.MTime = p.Commit.Time
	default:
		p.MTime = time.Unix(0, 0).UTC()
	}
	var notes []Note
	nameTarget, err := p.render(s, f, &notes)
	if err != nil {
		return Plan{}, nil, err
	}
	var replaced bool
	p.Entries, replaced = buildctx.Compose(f.Selected, buildctx.Composition{
		Dockerfile: p.Rendered.Dockerfile, Chosen: f.Dockerfile.Path, ChosenSize: f.DockerfileSize, Root: f.SourceDir,
		Ignore: f.Ignore, IgnoreData: f.IgnoreData,
	})
	if replaced {
		notes = append(notes, Note{Text: fmt.Sprintf("the source's root Dockerfile is replaced in the archive by the standalone one made from %s", p.Dockerfile.Name())})
	}
	files := make([]string, 0, len(p.Entries))
	for _, e := range p.Entries {
		files = append(files, e.Name)
	}
	p.Check = preflight.CheckParsed(p.Rendered.Model, preflight.Context{
		File: p.Dockerfile.Name(), Files: files, Target: p.Rendered.Target, Args: p.Rendered.Args, TargetSetting: "TARGET", Excluded: f.Excluded,
	})
	for _, w := range p.Check.Warnings { // problems in stages a build of the archive skips
		notes = append(notes, Note{Warn: true, Text: fmt.Sprint(w)})
	}

	in := imagename.Input{SHA: p.Commit.SHA, Target: nameTarget, Tags: s.Tags, Ref: p.Ref, BaseImage: p.BaseImage}
	primary := primaryTag(s, in)
	tags, err := imagename.Tags(in)
	if err != nil {
		return Plan{}, nil, exitcode.Usagef("naming the image: %v; shorten CUSTOM_TAGS (or the tag name of SDK_REF/GITHUB_REF)", err)
	}
	p.Tags = append([]string{primary}, slices.DeleteFunc(tags, func(t string) bool { return t == primary })...)
	name := s.OutputName
	if name == "" {
		name = fmt.Sprintf("%s-%s-%s%s.tar.gz", strings.ReplaceAll(s.ImageName, "/", "-"), p.Commit.Short(), s.PrimaryTag(), imagename.Suffix(nameTarget))
	}
	p.Archive = filepath.Join(s.OutputDir, name)
	return p, notes, nil
}

// primaryTag is TARGET_IMAGE's tag, else the names' own primary tag.
func primaryTag(s config.Pack, in imagename.Input) string {
	if s.TargetImage != "" {
		if t, err := imagename.Tag(s.TargetImage); err == nil { // config checked it
			return t
		}
	}
	return imagename.Primary(in)
}

// render makes the chosen Dockerfile (or the template rendered for the selected files)
// standalone for TARGET, the build args and the labels; it returns the target the names carry:
// the stage built, or binary for a Dockerfile's own default.
func (p *Plan) render(s config.Pack, f Facts, notes *[]Note) (string, error) {
	src := f.DockerfileSource
	if f.Dockerfile.Path == "" {
		if !slices.Contains(config.Targets, s.Target) && f.Template == "" {
			return "", exitcode.Usagef("TARGET=%q is not a stage of the built-in template: want one of %s (%s)", s.Target, strings.Join(config.Targets, ", "), why(f.Dockerfile, s))
		}
		var err error
		src, err = dockerfile.Render(f.Template, dockerfile.Data{
			SHA: p.Commit.SHA, ShortSHA: p.Commit.Short(), Target: s.Target, Targets: config.Targets,
			Tags: s.Tags, BaseImage: cmp.Or(s.BaseImage, config.TemplateBaseImage), ImageName: s.ImageName, Files: buildctx.Names(f.Selected),
		})
		if err != nil {
			return "", settingError(err)
		}
	}
	opt := dockerfile.Options{Chosen: "TARGET", Args: map[string]string{}, IfDeclared: map[string]string{
		"OPENHANDS_BUILD_GIT_SHA": p.Commit.SHA, "OPENHANDS_BUILD_GIT_REF": p.Ref,
	}}
	if s.BaseImage != "" {
		opt.IfDeclared["BASE_IMAGE"] = s.BaseImage
	}
	for _, a := range s.BuildArgs {
		opt.Args[a.Name] = a.Value
	}
	model, err := dockerfile.Parse(src) // the one parse of the run: rendering and the check read it
	if err != nil {
		return "", p.renderError(err)
	}
	if s.BaseImage != "" && !slices.Contains(model.Declared, "BASE_IMAGE") {
		*notes = append(*notes, Note{Warn: true, Text: fmt.Sprintf("BASE_IMAGE=%q is not used: %s declares no ARG BASE_IMAGE", s.BaseImage, p.Dockerfile.Name())})
	}
	nameTarget := s.Target
	if i, err := model.Stage(s.Target); err == nil && s.Target != "" {
		nameTarget = model.Names[i] // as BuildKit names it
		opt.Target = model.Names[i]
	} else if s.TargetSet || f.Dockerfile.Path == "" {
		opt.Target = s.Target // not a stage: Standalone says so, listing them
	}
	// else TARGET is unset and the Dockerfile has no binary stage: its own last stage, with the default names.
	sum := sha256.Sum256(src)
	opt.Labels = [][2]string{
		{"org.opencontainers.image.revision", p.Commit.SHA},
		{"org.opencontainers.image.version", primaryTag(s, imagename.Input{SHA: p.Commit.SHA, Target: nameTarget, Tags: s.Tags})},
		{"org.opencontainers.image.created", p.MTime.UTC().Format(time.RFC3339)},
	}
	if f.RemoteURL != "" {
		opt.Labels = append(opt.Labels, [2]string{"org.opencontainers.image.source", f.RemoteURL})
	}
	opt.Labels = append(opt.Labels, [2]string{"dev.runtimebuild.dockerfile", p.Dockerfile.Name() + "@sha256:" + hex.EncodeToString(sum[:])})
	if p.Rendered, err = model.Standalone(opt); err != nil {
		return "", p.renderError(err)
	}
	p.Target, p.BaseImage = p.Rendered.Target, baseImageOf(p.Rendered)
	return nameTarget, nil
}

// baseImageOf is the base image the names and the result file carry: like the project's
// build.py, which names its base tag after the BASE_IMAGE build arg whatever the target's stage
// starts FROM (build.py:456-458, 501-503), the value the standalone Dockerfile gives ARG
// BASE_IMAGE: the one baked (BASE_IMAGE, or BUILD_ARGS), else the default of its declaration
// before the first FROM. A Dockerfile with no such value (no ARG BASE_IMAGE, or one without a
// default) names the image the target's chain of stages starts from.
func baseImageOf(r dockerfile.Rendered) string {
	if v, ok := r.Args["BASE_IMAGE"]; ok {
		return v
	}
	if global := r.Model.Global(nil); !global.Unset("BASE_IMAGE") {
		if v, ok := global.Get("BASE_IMAGE"); ok && v != "" {
			return v
		}
	}
	return r.BaseImage
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
