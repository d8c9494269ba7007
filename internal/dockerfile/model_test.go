package dockerfile

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

const scoped = `ARG BASE=python
ARG TAG=3.12
ARG EMPTY
FROM ${BASE}:${TAG} AS Builder
ARG TAG
ARG OWN=own-${TAG}
ENV HOME=/home/${OWN}
FROM builder
ARG BASE
FROM scratch AS last
`

// scopeAt is the scope at the end of stage i, walked as preflight walks it.
func scopeAt(d *Dockerfile, i int, bake map[string]string) Scope {
	global := d.Global(bake)
	s := NewScope()
	for _, c := range d.Stages[i].Commands {
		switch c := c.(type) {
		case *instructions.ArgCommand:
			d.Declare(s, c, global, bake)
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				s.Set(kv.Key, d.Expand(kv.Value, s))
			}
		}
	}
	return s
}

func TestEachStageSeesItsOwnArgScope(t *testing.T) {
	d, err := Parse([]byte(scoped))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		stage int
		bake  map[string]string
		want  map[string]string // name → value; "<absent>" for a name not in scope
	}{
		{"a stage ARG without a value takes the global default, its own defaults expand with it", 0, nil,
			map[string]string{"TAG": "3.12", "OWN": "own-3.12", "HOME": "/home/own-3.12", "BASE": "<absent>"}},
		{"a baked value replaces every declaration, global and stage", 0, map[string]string{"TAG": "3.13"},
			map[string]string{"TAG": "3.13", "OWN": "own-3.13", "HOME": "/home/own-3.13"}},
		{"a later stage sees only what it declares again", 1, nil,
			map[string]string{"BASE": "python", "TAG": "<absent>", "OWN": "<absent>", "HOME": "<absent>"}},
		{"a stage declaring nothing has nothing in scope", 2, nil,
			map[string]string{"BASE": "<absent>", "TAG": "<absent>"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := scopeAt(d, tt.stage, tt.bake)
			for k, want := range tt.want {
				got, ok := s.Get(k)
				if !ok {
					got = "<absent>"
				}
				if got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestTheGlobalScopeTellsAnArgWithoutAValue(t *testing.T) {
	d, err := Parse([]byte(scoped))
	if err != nil {
		t.Fatal(err)
	}
	g := d.Global(nil)
	if v, ok := g.Get("EMPTY"); !ok || v != "" || !g.Unset("EMPTY") {
		t.Errorf("EMPTY: %q %v unset %v, want declared without a value", v, ok, g.Unset("EMPTY"))
	}
	if g.Unset("BASE") || !slices.Equal(g.Keys(), []string{"BASE", "EMPTY", "TAG"}) {
		t.Errorf("keys %v", g.Keys())
	}
	if g = d.Global(map[string]string{"EMPTY": "x"}); g.Unset("EMPTY") {
		t.Error("a baked value still counts as unset")
	}
	if !slices.Equal(d.Declared, []string{"BASE", "EMPTY", "OWN", "TAG"}) {
		t.Errorf("declared %v", d.Declared)
	}
}

func TestTheStageToBuildIsChosenAsBuildKitNamesStages(t *testing.T) {
	d, err := Parse([]byte(scoped))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Names, []string{"builder", "stage-1", "last"}) {
		t.Fatalf("names %v", d.Names)
	}
	for _, tt := range []struct {
		name, want string
		stage      int
	}{
		{"no name is the last stage", "", 2},
		{"a name in another case is the stage", "BUILDER", 0},
		{"an unnamed stage by its placeholder", "stage-1", 1},
		{"the last stage by name", "last", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if i, err := d.Stage(tt.want); err != nil || i != tt.stage {
				t.Fatalf("Stage(%q) = %d, %v; want %d", tt.want, i, err, tt.stage)
			}
		})
	}
	_, err = d.Stage("final")
	var ut *UnknownTargetError
	if !errors.As(err, &ut) || ut.Target != "final" || !slices.Equal(ut.Stages, d.Names) ||
		err.Error() != `no stage named "final"; the stages are builder, stage-1, last` {
		t.Fatalf("an unknown stage: %v", err)
	}
}

func TestTheBaseImageFollowsTheChainOfStages(t *testing.T) {
	d, err := Parse([]byte(scoped + "FROM last AS after\nFROM ${EMPTY}base AS unknown\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		stage string
		bake  map[string]string
		want  string
	}{
		{"builder", nil, "python:3.12"},
		{"stage-1", nil, "python:3.12"},
		{"stage-1", map[string]string{"BASE": "debian", "TAG": "12"}, "debian:12"},
		{"after", nil, "scratch"},
		{"unknown", nil, ""}, // uses an ARG with no value: known only to a build
		{"unknown", map[string]string{"EMPTY": "my"}, "mybase"},
	} {
		i, err := d.Stage(tt.stage)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.BaseImage(i, d.Global(tt.bake)); got != tt.want {
			t.Errorf("%s with %v: base image %q, want %q", tt.stage, tt.bake, got, tt.want)
		}
	}
}

func TestParseRefusesWhatBuildKitRefuses(t *testing.T) {
	for _, tt := range []struct{ src, msg string }{
		{"ARG X=1\n", "no FROM instruction"},
		{"FROM scratch\n\nCOPPY a b\n", "unknown instruction"},
	} {
		_, err := Parse([]byte(tt.src))
		var pe *ParseError
		if !errors.As(err, &pe) || !strings.Contains(pe.Error(), tt.msg) {
			t.Errorf("%q: %v, want a ParseError saying %q", tt.src, err, tt.msg)
		}
	}
}
