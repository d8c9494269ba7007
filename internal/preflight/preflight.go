// Package preflight checks a Dockerfile (the model dockerfile.Parse makes) against the files
// of its build context, as BuildKit would build it, so that a build bound to fail on a missing
// file fails here in milliseconds.
package preflight

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"

	"github.com/runtimebuild/runtimebuild/internal/dockerfile"
)

// Problem is one thing wrong with the Dockerfile, at a line of it.
type Problem struct {
	File  string // the Dockerfile's name in messages (Context.File)
	Line  int
	Msg   string
	Stage string // the stage it is in ("stage-N" for an unnamed one); empty for the whole file
	stage int    // the index of that stage plus one; 0 for the whole file
}

// String is "<file>:<line>: <message>", as compilers print.
func (p Problem) String() string {
	file := p.File
	if file == "" {
		file = "Dockerfile"
	}
	return fmt.Sprintf("%s:%d: %s", file, p.Line, p.Msg)
}

// Context is what the Dockerfile is checked against.
type Context struct {
	// File names the Dockerfile in problems: the source Dockerfile a standalone one was made
	// from (their lines are the same). Empty: "Dockerfile".
	File   string
	Files  []string // every path in the context (files, links and directories), slash-separated
	Target string   // the stage to build; empty: the last one
	// TargetSetting is how problems name the setting that chooses the target ("TARGET", a
	// request's "target"); empty: "target".
	TargetSetting string
	// Args are the build args the Dockerfile is checked with: the values a standalone
	// Dockerfile bakes into its ARGs (dockerfile.Rendered.Args). May be nil.
	Args map[string]string
	// Excluded explains why a path missing from the context is missing ("excluded by
	// .dockerignore line 3: docs"); empty when it does not know. May be nil.
	Excluded func(path string) string
}

func (c Context) targetSetting() string {
	if c.TargetSetting == "" {
		return "target"
	}
	return c.TargetSetting
}

// Report is the outcome of Check.
type Report struct {
	Stages []string // stage names in order ("stage-N" for unnamed ones)
	// Target is the stage the build makes: Context.Target, else the last stage, followed
	// through unnamed "FROM <stage>" aliases.
	Target   string
	Problems []Problem // in the stages the build needs, or in the whole file: the build fails
	// Warnings are problems in stages the build does not need: BuildKit builds only the stages
	// the target needs, so these cannot fail it. Their messages say so.
	Warnings []Problem

	cur int // the stage being checked, plus one
}

// OK reports whether no problem was found.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// builtinArgs are the ARGs BuildKit defines for every FROM.
var builtinArgs = map[string]bool{
	"TARGETPLATFORM": true, "TARGETOS": true, "TARGETARCH": true, "TARGETVARIANT": true,
	"BUILDPLATFORM": true, "BUILDOS": true, "BUILDARCH": true, "BUILDVARIANT": true,
}

// Check parses src and checks it against ctx (CheckParsed); a Dockerfile that does not parse
// is a single problem at the line BuildKit names.
func Check(src []byte, ctx Context) Report {
	d, err := dockerfile.Parse(src)
	if err != nil {
		pe := dockerfile.AsParseError(err)
		return named(Report{Problems: []Problem{{Line: pe.Line, Msg: pe.Error()}}}, ctx.File)
	}
	return CheckParsed(d, ctx)
}

// CheckParsed checks d against ctx as BuildKit would build it: COPY and ADD sources and RUN
// --mount=type=bind sources must be in the context (after expanding ${ARG} and ${ENV} with the
// values the Dockerfile gives them, ctx.Args baked in), --from must name an earlier stage or
// an image. As BuildKit builds only the stages the target needs (through FROM <stage>,
// COPY --from=<stage|index> and RUN --mount=from=<stage>), a problem in any other stage is a
// warning.
func CheckParsed(d *dockerfile.Dockerfile, ctx Context) Report {
	return named(check(d, ctx), ctx.File)
}

// named puts the Dockerfile's name on every problem.
func named(rep Report, file string) Report {
	for i := range rep.Problems {
		rep.Problems[i].File = file
	}
	for i := range rep.Warnings {
		rep.Warnings[i].File = file
	}
	return rep
}

func check(d *dockerfile.Dockerfile, ctx Context) Report {
	rep := Report{Stages: slices.Clone(d.Names)}
	global := d.Global(ctx.Args)
	files := newFileSet(ctx.Files)
	earlier := map[string]int{} // the named stages before the current one, as --from sees them
	byName := map[string]int{}
	for i, st := range d.Stages {
		if st.Name != "" {
			byName[strings.ToLower(st.Name)] = i
		}
	}
	deps := make([][]int, len(d.Stages))
	for i, st := range d.Stages {
		rep.cur = i + 1
		line := lineOf(st.Location)
		for _, v := range d.Unmatched(st.BaseName, global) {
			if !builtinArgs[v] {
				rep.add(line, fmt.Sprintf("FROM uses $%s, which no ARG before the first FROM declares", v))
			}
		}
		if j := d.Base(i, global); j >= 0 {
			deps[i] = append(deps[i], j)
		}
		env := dockerfile.NewScope()
		dependOn := func(from string, index bool) { // COPY --from takes a stage index too, RUN --mount=from only names
			from, known := d.ExpandKnown(from, env)
			if !known {
				return
			}
			if n, err := strconv.Atoi(from); err == nil && index && n >= 0 && n < len(d.Stages) {
				deps[i] = append(deps[i], n)
			} else if j, ok := byName[strings.ToLower(from)]; ok {
				deps[i] = append(deps[i], j)
			}
		}
		from := func(verb, from string, line int) {
			from, known := d.ExpandKnown(from, env)
			if !known {
				return
			}
			if _, isStage := earlier[strings.ToLower(from)]; !isStage && !isStageIndex(from, i) && (isNumber(from) || !isImage(from)) {
				rep.add(line, fmt.Sprintf("%s --from=%s names neither an earlier stage nor an image", verb, from))
			}
		}
		for _, cmd := range st.Commands {
			switch c := cmd.(type) {
			case *instructions.ArgCommand:
				d.Declare(env, c, global, ctx.Args)
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					env.Set(kv.Key, d.Expand(kv.Value, env))
				}
			case *instructions.CopyCommand:
				if c.From != "" {
					if r, err := d.ExpandMatches(c.From, dockerfile.NewScope()); err != nil || r.Result != c.From {
						// BuildKit refuses it in every stage, built or not
						rep.addFile(lineOf(c.Location()), fmt.Sprintf("COPY --from=%s: BuildKit does not expand variables in --from; "+
							"declare the ARG before the first FROM, add a stage FROM %s AS <name> and copy --from=<name>", c.From, c.From))
						continue
					}
					dependOn(c.From, true)
					from("COPY", c.From, lineOf(c.Location()))
					continue
				}
				rep.checkSources(d, lineOf(c.Location()), "COPY source", c.SourcePaths, files, env, ctx.Excluded)
			case *instructions.AddCommand:
				rep.checkSources(d, lineOf(c.Location()), "ADD source", c.SourcePaths, files, env, ctx.Excluded)
			case *instructions.RunCommand:
				for _, m := range instructions.GetMounts(c) { // as parsed, before expansion: what BuildKit's dependencies see
					if m.From != "" {
						dependOn(m.From, false)
					}
				}
				unknown := false
				err := c.Expand(func(w string) (string, error) { // as dispatch does, with the values known here
					r, err := d.ExpandMatches(w, env)
					if err != nil {
						return "", err
					}
					unknown = unknown || len(r.Unmatched) > 0
					return r.Result, nil
				})
				if err != nil {
					rep.add(lineOf(c.Location()), "RUN --mount: "+err.Error())
					continue
				}
				if unknown {
					continue // a value known only at build time
				}
				for _, m := range instructions.GetMounts(c) {
					if m.Type != instructions.MountTypeBind {
						continue // cache, tmpfs, secret and ssh mounts take nothing from the context
					}
					if m.From != "" {
						from("RUN --mount", m.From, lineOf(c.Location()))
						continue
					}
					if m.Source != "" {
						rep.checkSources(d, lineOf(c.Location()), "RUN --mount=type=bind source", []string{m.Source}, files, env, ctx.Excluded)
					}
				}
			}
		}
		if st.Name != "" {
			earlier[strings.ToLower(st.Name)] = i
		}
	}
	rep.cur = 0
	root, err := d.Stage(ctx.Target)
	if err != nil {
		rep.add(1, fmt.Sprintf("no stage named %q (%s); the stages are %s", ctx.Target, ctx.targetSetting(), strings.Join(rep.Stages, ", ")))
		sortByLine(rep.Problems)
		return rep // which stages are built is not known: every problem stands
	}
	rep.Target = rep.Stages[root]
	for r := root; d.Stages[r].Name == ""; { // an unnamed "FROM <stage>" builds that stage
		if r = d.Base(r, global); r < 0 {
			break
		}
		rep.Target = rep.Stages[r]
	}
	needed := map[int]bool{}
	var need func(int)
	need = func(i int) {
		if !needed[i] {
			needed[i] = true
			for _, d := range deps[i] {
				need(d)
			}
		}
	}
	need(root)
	var problems []Problem
	for _, p := range rep.Problems {
		if p.stage == 0 || needed[p.stage-1] {
			problems = append(problems, p)
			continue
		}
		p.Msg += fmt.Sprintf("; stage %s is not built for %s=%s", p.Stage, ctx.targetSetting(), rep.Target)
		rep.Warnings = append(rep.Warnings, p)
	}
	rep.Problems = problems
	sortByLine(rep.Problems)
	sortByLine(rep.Warnings)
	return rep
}

func sortByLine(ps []Problem) {
	sort.SliceStable(ps, func(a, b int) bool { return ps[a].Line < ps[b].Line })
}

// addFile adds a problem that fails the build whichever stages it builds.
func (r *Report) addFile(line int, msg string) {
	r.Problems = append(r.Problems, Problem{Line: line, Msg: msg})
}

func (r *Report) add(line int, msg string) {
	p := Problem{Line: line, Msg: msg, stage: r.cur}
	if r.cur > 0 {
		p.Stage = r.Stages[r.cur-1]
	}
	r.Problems = append(r.Problems, p)
}

func (r *Report) checkSources(d *dockerfile.Dockerfile, line int, what string, sources []string, files fileSet, env dockerfile.Scope, excluded func(string) string) {
	for _, raw := range sources {
		if isRemote(raw) {
			continue // a URL or a git repository
		}
		src, known := d.ExpandKnown(raw, env)
		if !known {
			continue // a value known only at build time
		}
		shown := src
		if src != raw {
			shown = fmt.Sprintf("%s (%s)", src, raw)
		}
		p := strings.TrimPrefix(path.Clean("/"+src), "/")
		if p == "" {
			continue
		}
		if !files.has(p) {
			msg := fmt.Sprintf("%s %s is not in the build context", what, shown)
			if why := explain(excluded, p); why != "" {
				msg += " (" + why + ")"
			}
			r.add(line, msg)
			continue
		}
		if strings.HasSuffix(src, "/") && !strings.ContainsAny(p, "*?[") && !files.dirs[p] {
			r.add(line, fmt.Sprintf("%s %s names a directory, but %s is a file", what, shown, p))
		}
	}
}

func explain(excluded func(string) string, p string) string {
	if excluded == nil || strings.ContainsAny(p, "*?[") {
		return ""
	}
	return excluded(p)
}

func isRemote(src string) bool {
	for _, prefix := range []string{"http://", "https://", "git@", "git://"} {
		if strings.HasPrefix(src, prefix) {
			return true
		}
	}
	return false
}

func isStageIndex(s string, current int) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n < current
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

func isImage(s string) bool {
	_, err := name.ParseReference(s)
	return err == nil
}

func lineOf(r []parser.Range) int {
	if len(r) == 0 {
		return 1
	}
	return r[0].Start.Line
}

// fileSet answers whether a COPY source exists: a path, a directory holding paths, or a glob.
type fileSet struct {
	paths map[string]bool
	dirs  map[string]bool // the paths holding others
}

func newFileSet(files []string) fileSet {
	s := fileSet{paths: map[string]bool{}, dirs: map[string]bool{}}
	for _, f := range files {
		f = strings.TrimSuffix(f, "/")
		s.paths[f] = true
		for p := path.Dir(f); p != "." && p != "/" && !s.dirs[p]; p = path.Dir(p) {
			s.paths[p], s.dirs[p] = true, true // every directory above the file
		}
	}
	return s
}

func (s fileSet) has(p string) bool {
	if s.paths[p] {
		return true
	}
	if !strings.ContainsAny(p, "*?[") {
		return false
	}
	if strings.Contains(p, "**") {
		m, err := patternmatcher.New([]string{p})
		if err != nil {
			return false
		}
		for f := range s.paths {
			if ok, _ := m.MatchesOrParentMatches(f); ok {
				return true
			}
		}
		return false
	}
	for f := range s.paths {
		if ok, _ := path.Match(p, f); ok {
			return true
		}
	}
	return false
}
