package dockerfile

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Dockerfile is a Dockerfile parsed once with BuildKit's own parser: its syntax tree, its
// stages and the ARGs it declares. Standalone rendering (Standalone), the pre-flight check
// (package preflight) and serve's choice of a stage (Stage) are all read from this one value,
// so that they agree on what the stages are called and which ARG values are in scope.
type Dockerfile struct {
	Source   []byte
	AST      *parser.Result
	Stages   []instructions.Stage
	MetaArgs []instructions.ArgCommand // the ARGs before the first FROM
	Names    []string                  // the stage names, in order ("stage-N" for unnamed ones)
	Declared []string                  // every ARG name declared anywhere, sorted
	lex      *shell.Lex
}

// Parse parses src with BuildKit. A Dockerfile BuildKit refuses, or one without a FROM, is a
// *ParseError at the line it concerns.
func Parse(src []byte) (*Dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, AsParseError(err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, AsParseError(err)
	}
	if len(stages) == 0 {
		return nil, &ParseError{Line: 1, Err: errors.New("no FROM instruction: nothing to build")}
	}
	d := &Dockerfile{Source: src, AST: res, Stages: stages, MetaArgs: metaArgs, lex: shell.NewLex(res.EscapeToken)}
	declared := map[string]bool{}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			declared[kv.Key] = true
		}
	}
	for i, st := range stages {
		d.Names = append(d.Names, stageName(st, i))
		for _, c := range st.Commands {
			if a, ok := c.(*instructions.ArgCommand); ok {
				for _, kv := range a.Args {
					declared[kv.Key] = true
				}
			}
		}
	}
	d.Declared = slices.Sorted(maps.Keys(declared))
	return d, nil
}

// Stage is the index of the stage named want, compared as BuildKit compares stage names
// (case-insensitively; "stage-N" for an unnamed one); empty want is the last stage. A name no
// stage has is an *UnknownTargetError listing the stages.
func (d *Dockerfile) Stage(want string) (int, error) {
	if want == "" {
		return len(d.Stages) - 1, nil
	}
	if i := slices.IndexFunc(d.Names, func(s string) bool { return strings.EqualFold(s, want) }); i >= 0 {
		return i, nil
	}
	return -1, &UnknownTargetError{Target: want, Stages: slices.Clone(d.Names)}
}

// Scope is the ARG (and ENV) values in scope at some point of a Dockerfile, as BuildKit's
// word expansion looks them up. A declared ARG without a value is in scope with "" (Unset
// tells it apart).
type Scope struct {
	values map[string]string
	unset  map[string]bool
}

// NewScope is an empty scope.
func NewScope() Scope { return Scope{values: map[string]string{}, unset: map[string]bool{}} }

// Get is the value of k (shell.EnvGetter).
func (s Scope) Get(k string) (string, bool) { v, ok := s.values[k]; return v, ok }

// Keys are the names in scope (shell.EnvGetter).
func (s Scope) Keys() []string { return slices.Sorted(maps.Keys(s.values)) }

// Set puts k in scope with value v.
func (s Scope) Set(k, v string) { s.values[k] = v; delete(s.unset, k) }

// Forget takes k out of scope: a word using it is then one whose value is not known.
func (s Scope) Forget(k string) { delete(s.values, k); delete(s.unset, k) }

// Unset reports whether k is declared without a value (known only to a build given --build-arg).
func (s Scope) Unset(k string) bool { return s.unset[k] }

// Global is the scope the FROM lines see: the ARGs before the first FROM with their defaults
// (expanded in order), a name of bake taking its value instead, as it does in the standalone
// Dockerfile.
func (d *Dockerfile) Global(bake map[string]string) Scope {
	s := NewScope()
	for _, a := range d.MetaArgs {
		for _, kv := range a.Args {
			switch v, ok := bake[kv.Key]; {
			case ok:
				s.Set(kv.Key, v)
			case kv.Value != nil:
				s.Set(kv.Key, d.Expand(*kv.Value, s))
			default:
				s.values[kv.Key], s.unset[kv.Key] = "", true
			}
		}
	}
	return s
}

// Declare puts the names of an ARG inside a stage in scope as BuildKit does: a baked value,
// else the default expanded, else the value of the ARG before the first FROM, else "".
func (d *Dockerfile) Declare(s Scope, arg *instructions.ArgCommand, global Scope, bake map[string]string) {
	for _, kv := range arg.Args {
		if v, ok := bake[kv.Key]; ok {
			s.Set(kv.Key, v)
			continue
		}
		switch v, ok := global.Get(kv.Key); {
		case kv.Value != nil:
			s.Set(kv.Key, d.Expand(*kv.Value, s))
		case ok:
			s.Set(kv.Key, v)
		default:
			s.Set(kv.Key, "")
		}
	}
}

// Expand is word with the variables of s expanded ("" for unknown ones), as BuildKit does; a
// word that does not expand stays as it is.
func (d *Dockerfile) Expand(word string, s Scope) string {
	r, _, err := d.lex.ProcessWord(word, s)
	if err != nil {
		return word
	}
	return r
}

// ExpandKnown expands word; false when it uses a variable s does not hold (known only at
// build time) or does not expand.
func (d *Dockerfile) ExpandKnown(word string, s Scope) (string, bool) {
	if !strings.Contains(word, "$") {
		return word, true
	}
	r, err := d.ExpandMatches(word, s)
	if err != nil || len(r.Unmatched) > 0 {
		return "", false
	}
	return r.Result, true
}

// Unmatched are the variables word uses that s does not hold, sorted; nil when word does not
// expand.
func (d *Dockerfile) Unmatched(word string, s Scope) []string {
	r, err := d.ExpandMatches(word, s)
	if err != nil {
		return nil
	}
	return slices.Sorted(maps.Keys(r.Unmatched))
}

// Base is the earlier stage that stage i is built FROM, or -1 when it starts from an image;
// global is the scope of its FROM line (Global).
func (d *Dockerfile) Base(i int, global Scope) int {
	base := strings.ToLower(d.Expand(d.Stages[i].BaseName, global))
	for j := i - 1; j >= 0; j-- {
		if d.Stages[j].Name != "" && d.Stages[j].Name == base {
			return j
		}
	}
	return -1
}

// BaseImage is the image the chain of stages ending at stage i starts from, with the values
// of global expanded ("scratch" included); empty when it cannot be known without a build (it
// uses an ARG with no value).
func (d *Dockerfile) BaseImage(i int, global Scope) string {
	for b := d.Base(i, global); b >= 0; b = d.Base(i, global) {
		i = b
	}
	r, err := d.ExpandMatches(d.Stages[i].BaseName, global)
	if err != nil || len(r.Unmatched) > 0 {
		return ""
	}
	for v := range r.Matched {
		if global.Unset(v) {
			return ""
		}
	}
	return r.Result
}

// stageName is the name BuildKit gives stage i: its own, else "stage-i".
func stageName(st instructions.Stage, i int) string {
	if st.Name != "" {
		return st.Name
	}
	return "stage-" + strconv.Itoa(i)
}

// ExpandMatches is BuildKit's expansion of word with the values of s, telling the variables
// it found and those it did not.
func (d *Dockerfile) ExpandMatches(word string, s Scope) (shell.ProcessWordResult, error) {
	return d.lex.ProcessWordWithMatches(word, s)
}
