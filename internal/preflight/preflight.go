// Package preflight checks a Dockerfile against the files of its build context with BuildKit's
// own parser, so that a build bound to fail on a missing file fails here in milliseconds.
package preflight

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
)

// Problem is one thing wrong with the Dockerfile, at a line of it.
type Problem struct {
	Line int
	Msg  string
}

func (p Problem) String() string { return fmt.Sprintf("Dockerfile:%d: %s", p.Line, p.Msg) }

// Context is what the Dockerfile is checked against.
type Context struct {
	Files  []string // every path in the context (files, links and directories), slash-separated
	Target string   // the stage to build; empty: the last one
	// Excluded explains why a path missing from the context is missing ("excluded by
	// .dockerignore line 3: docs"); empty when it does not know. May be nil.
	Excluded func(path string) string
}

// Report is the outcome of Check.
type Report struct {
	Stages   []string // stage names in order ("stage-N" for unnamed ones)
	Problems []Problem
}

// OK reports whether no problem was found.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// builtinArgs are the ARGs BuildKit defines for every FROM.
var builtinArgs = map[string]bool{
	"TARGETPLATFORM": true, "TARGETOS": true, "TARGETARCH": true, "TARGETVARIANT": true,
	"BUILDPLATFORM": true, "BUILDOS": true, "BUILDARCH": true, "BUILDVARIANT": true,
}

// Check parses dockerfile and checks it against ctx. A Dockerfile that does not parse is a
// single problem at the line BuildKit names.
func Check(dockerfile []byte, ctx Context) Report {
	var rep Report
	res, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		return Report{Problems: []Problem{problemFrom(err)}}
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return Report{Problems: []Problem{problemFrom(err)}}
	}
	if len(stages) == 0 {
		return Report{Problems: []Problem{{Line: 1, Msg: "no FROM instruction: nothing to build"}}}
	}
	declared := argEnv{}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			v := ""
			if kv.Value != nil {
				v = *kv.Value
			}
			declared[kv.Key] = v
		}
	}
	files := newFileSet(ctx.Files)
	names := map[string]int{}
	lex := shell.NewLex(res.EscapeToken)
	for i, st := range stages {
		stageName := st.Name
		if stageName == "" {
			stageName = "stage-" + strconv.Itoa(i)
		}
		rep.Stages = append(rep.Stages, stageName)
		line := lineOf(st.Location)
		for _, v := range undeclaredVars(lex, st.BaseName, declared) {
			rep.add(line, fmt.Sprintf("FROM uses $%s, which no ARG before the first FROM declares", v))
		}
		for _, cmd := range st.Commands {
			switch c := cmd.(type) {
			case *instructions.CopyCommand:
				if c.From != "" {
					if _, isStage := names[strings.ToLower(c.From)]; !isStage && !isStageIndex(c.From, i) && (isNumber(c.From) || !isImage(c.From)) {
						rep.add(lineOf(c.Location()), fmt.Sprintf("COPY --from=%s names neither an earlier stage nor an image", c.From))
					}
					continue
				}
				rep.checkSources(lineOf(c.Location()), "COPY", c.SourcePaths, files, ctx.Excluded)
			case *instructions.AddCommand:
				rep.checkSources(lineOf(c.Location()), "ADD", c.SourcePaths, files, ctx.Excluded)
			}
		}
		names[strings.ToLower(st.Name)] = i
	}
	if ctx.Target != "" {
		if _, ok := names[strings.ToLower(ctx.Target)]; !ok {
			rep.add(1, fmt.Sprintf("no stage named %q (TARGET); the stages are %s", ctx.Target, strings.Join(rep.Stages, ", ")))
		}
	}
	sort.SliceStable(rep.Problems, func(a, b int) bool { return rep.Problems[a].Line < rep.Problems[b].Line })
	return rep
}

func (r *Report) add(line int, msg string) {
	r.Problems = append(r.Problems, Problem{Line: line, Msg: msg})
}

func (r *Report) checkSources(line int, verb string, sources []string, files fileSet, excluded func(string) string) {
	for _, src := range sources {
		if isRemote(src) || strings.Contains(src, "$") {
			continue // a URL, a git repository, or a value known only at build time
		}
		p := strings.TrimPrefix(path.Clean("/"+src), "/")
		if p == "" || files.has(p) {
			continue
		}
		msg := fmt.Sprintf("%s source %s is not in the build context", verb, src)
		if why := explain(excluded, p); why != "" {
			msg += " (" + why + ")"
		}
		r.add(line, msg)
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

// undeclaredVars lists the variables of a FROM line that no meta ARG declares.
func undeclaredVars(lex *shell.Lex, word string, declared argEnv) []string {
	res, err := lex.ProcessWordWithMatches(word, declared)
	if err != nil {
		return nil
	}
	var out []string
	for v := range res.Unmatched {
		if !builtinArgs[v] {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

type argEnv map[string]string

func (a argEnv) Get(k string) (string, bool) { v, ok := a[k]; return v, ok }
func (a argEnv) Keys() []string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	return keys
}

func lineOf(r []parser.Range) int {
	if len(r) == 0 {
		return 1
	}
	return r[0].Start.Line
}

var (
	lineInError = regexp.MustCompile(`line (\d+)`)
	parsePrefix = regexp.MustCompile(`^.*line \d+: `)
)

// problemFrom turns a parse error into a problem at the line BuildKit names.
func problemFrom(err error) Problem {
	line := 1
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		line = le.Locations[0][0].Start.Line
	} else if m := lineInError.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	return Problem{Line: line, Msg: parsePrefix.ReplaceAllString(err.Error(), "")}
}

// fileSet answers whether a COPY source exists: a path, a directory holding paths, or a glob.
type fileSet struct {
	paths map[string]bool
	list  []string
}

func newFileSet(files []string) fileSet {
	s := fileSet{paths: map[string]bool{}, list: files}
	for _, f := range files {
		for p := f; p != "." && p != "/" && !s.paths[p]; p = path.Dir(p) {
			s.paths[p] = true // the file and every directory above it
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
