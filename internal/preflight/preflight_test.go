package preflight

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/dockerfile"
)

var files = []string{"Dockerfile", "README.md", "app/main.py", "app/util.py", "pyproject.toml", "uv.lock", "scripts/run.sh"}

func TestCheck(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		target     string
		want       []string
	}{
		{"a valid multi-stage Dockerfile", `ARG BASE=python:3.12
FROM ${BASE} AS builder
COPY pyproject.toml uv.lock ./
COPY app/ /app/
COPY app/*.py scripts /x/
COPY . .
FROM builder AS final
COPY --from=builder /app /app
COPY --from=0 /app /app2
COPY --from=busybox:1.36 /bin/sh /sh
ADD https://example.com/x.tgz /tmp/
`, "final", nil},
		{"a missing COPY source", "FROM scratch\nCOPY README.md /\nCOPY missing.txt docs/ /\n", "", []string{
			"Dockerfile:3: COPY source missing.txt is not in the build context",
			"Dockerfile:3: COPY source docs/ is not in the build context"}},
		{"a glob matching nothing", "FROM scratch\n\nADD app/*.go /\n", "", []string{"Dockerfile:3: ADD source app/*.go is not in the build context"}},
		{"an unknown TARGET", "FROM scratch AS one\nFROM one AS two\n", "three", []string{`Dockerfile:1: no stage named "three" (TARGET); the stages are one, two`}},
		{"a --from naming nothing", "FROM scratch AS a\nCOPY --from=Not_An_Image! /x /x\n", "", []string{"Dockerfile:2: COPY --from=Not_An_Image! names neither an earlier stage nor an image"}},
		{"a --from naming a later stage by index", "FROM scratch AS a\nCOPY --from=1 /x /x\nFROM scratch AS b\n", "a", []string{"Dockerfile:2: COPY --from=1 names neither an earlier stage nor an image"}},
		{"an ARG used in FROM but declared after it", "FROM python:${VERSION}\nARG VERSION=3.12\n", "", []string{"Dockerfile:1: FROM uses $VERSION, which no ARG before the first FROM declares"}},
		{"built-in platform ARGs need no declaration", "FROM --platform=$BUILDPLATFORM golang:1.25 AS b\nFROM scratch\n", "", nil},
		{"an unknown instruction", "FROM scratch\nCOPPY a b\n", "", []string{"Dockerfile:2: unknown instruction: COPPY (did you mean COPY?)"}},
		{"no FROM", "ARG X=1\n", "", []string{"Dockerfile:1: no FROM instruction: nothing to build"}},
		{"an empty file", "# only a comment\n", "", []string{"Dockerfile:1: file with no instructions"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Check([]byte(tt.dockerfile), Context{Files: files, Target: tt.target, TargetSetting: "TARGET"})
			var got []string
			for _, p := range rep.Problems {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestCheckExplainsExcludedFiles(t *testing.T) {
	rep := Check([]byte("FROM scratch\nCOPY docs/guide.md /\n"), Context{Files: files, Excluded: func(p string) string {
		if p == "docs/guide.md" {
			return "excluded by .dockerignore line 2: docs"
		}
		return ""
	}})
	if len(rep.Problems) != 1 || rep.Problems[0].String() != "Dockerfile:2: COPY source docs/guide.md is not in the build context (excluded by .dockerignore line 2: docs)" {
		t.Fatalf("problems %v", rep.Problems)
	}
}

func TestProblemsNameTheTargetAsTheCallerSays(t *testing.T) {
	df := []byte("FROM scratch AS one\nCOPY gone /\nFROM scratch AS two\n")
	for _, tt := range []struct {
		setting, unknown, skipped string
	}{
		{"", `Dockerfile:1: no stage named "three" (target); the stages are one, two`, "Dockerfile:2: COPY source gone is not in the build context; stage one is not built for target=two"},
		{"TARGET", `Dockerfile:1: no stage named "three" (TARGET); the stages are one, two`, "Dockerfile:2: COPY source gone is not in the build context; stage one is not built for TARGET=two"},
	} {
		rep := Check(df, Context{Files: files, Target: "three", TargetSetting: tt.setting})
		if len(rep.Problems) != 2 || rep.Problems[0].String() != tt.unknown {
			t.Errorf("setting %q: problems %v, want %q first", tt.setting, rep.Problems, tt.unknown)
		}
		rep = Check(df, Context{Files: files, Target: "two", TargetSetting: tt.setting})
		if len(rep.Warnings) != 1 || rep.Warnings[0].String() != tt.skipped {
			t.Errorf("setting %q: warnings %v, want %q", tt.setting, rep.Warnings, tt.skipped)
		}
	}
}

func TestStagesAreListed(t *testing.T) {
	rep := Check([]byte("FROM scratch AS base\nFROM base\nFROM base AS last\n"), Context{Files: files})
	if !rep.OK() || !slices.Equal(rep.Stages, []string{"base", "stage-1", "last"}) {
		t.Fatalf("report %+v", rep)
	}
}

func FuzzCheckNeverPanics(f *testing.F) {
	f.Add("FROM scratch\nCOPY a b\n")
	f.Add("ARG X\nFROM ${X:-y} AS z\nCOPY --from=z /a /b\n")
	f.Fuzz(func(t *testing.T, df string) {
		Check([]byte(df), Context{Files: files, Target: "z"})
	})
}

func TestCheckSpeaksBuildKit(t *testing.T) {
	df := `ARG USERNAME=openhands
ARG UV=ghcr.io/astral-sh/uv:0.11.6
ARG PKG=app
FROM python:3.13 AS builder
ARG USERNAME UV PKG
ENV SCRIPTS=scripts
COPY --from=${UV} /uv /uvx /bin/
COPY --chown=${USERNAME}:${USERNAME} ${PKG} ./${PKG}
COPY ${SCRIPTS}/run.sh /run.sh
RUN --mount=type=cache,target=/home/${USERNAME}/.cache,uid=1 --mount=type=bind,source=${SCRIPTS}/run.sh,target=/r sh /r
RUN --mount=type=bind,source=scripts/missing.sh,target=/m sh /m
RUN --mount=type=bind,from=builder,source=/nowhere,target=/n true
RUN --mount=type=bind,target=/ctx ls /ctx
COPY ${PKG}/ /app/
COPY README.md/ /r/
COPY ${UNKNOWN}/x /x
`
	rep := Check([]byte(df), Context{File: "server/docker/Dockerfile", Files: files})
	var got []string
	for _, p := range rep.Problems {
		got = append(got, p.String())
	}
	want := []string{
		"server/docker/Dockerfile:7: COPY --from=${UV}: BuildKit does not expand variables in --from; declare the ARG before the first FROM, add a stage FROM ${UV} AS <name> and copy --from=<name>",
		"server/docker/Dockerfile:11: RUN --mount=type=bind source scripts/missing.sh is not in the build context",
		"server/docker/Dockerfile:15: COPY source README.md/ names a directory, but README.md is a file",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rep = Check([]byte("ARG PKG=gone\nFROM scratch\nARG PKG\nCOPY ${PKG} /\n"), Context{Files: files})
	if len(rep.Problems) != 1 || rep.Problems[0].String() != "Dockerfile:4: COPY source gone (${PKG}) is not in the build context" {
		t.Fatalf("an expanded source: %v", rep.Problems)
	}
}

func TestAVariableInCopyFromFailsEvenInAStageNotBuilt(t *testing.T) {
	rep := Check([]byte("ARG UV=ghcr.io/astral-sh/uv:0.11.6\nFROM scratch AS unused\nARG UV\nCOPY --from=$UV /uv /uv\nFROM scratch AS final\n"), Context{Files: files})
	if len(rep.Problems) != 1 || !strings.HasPrefix(rep.Problems[0].String(), "Dockerfile:4: COPY --from=$UV: BuildKit does not expand variables in --from") || len(rep.Warnings) != 0 {
		t.Fatalf("problems %v, warnings %v", rep.Problems, rep.Warnings)
	}
}

func TestOnlyTheStagesTheTargetNeedsFailTheCheck(t *testing.T) {
	df := `FROM scratch AS base
COPY gone-base /
FROM base AS derived
FROM scratch AS copied
COPY gone-copied /
FROM scratch AS by-index
COPY gone-by-index /
FROM scratch AS mounted
COPY gone-mounted /
FROM scratch AS unused
COPY gone-unused /
FROM scratch AS Other
COPY gone-other /
FROM derived AS final
COPY --from=Copied /a /a
COPY --from=3 /a /b
RUN --mount=type=bind,from=mounted,target=/m true
FROM final
`
	strs := func(ps []Problem) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.String())
		}
		return out
	}
	for _, tt := range []struct {
		name, target, built string
		problems, warnings  []string
	}{
		{"the last stage, an alias of final, needs base through FROM, and the stages it copies and mounts from", "", "final",
			[]string{
				"d/Dockerfile:2: COPY source gone-base is not in the build context",
				"d/Dockerfile:5: COPY source gone-copied is not in the build context",
				"d/Dockerfile:7: COPY source gone-by-index is not in the build context",
				"d/Dockerfile:9: COPY source gone-mounted is not in the build context",
			}, []string{
				"d/Dockerfile:11: COPY source gone-unused is not in the build context; stage unused is not built for TARGET=final",
				"d/Dockerfile:13: COPY source gone-other is not in the build context; stage other is not built for TARGET=final",
			}},
		{"a TARGET needing nothing else", "Other", "other",
			[]string{"d/Dockerfile:13: COPY source gone-other is not in the build context"},
			[]string{
				"d/Dockerfile:2: COPY source gone-base is not in the build context; stage base is not built for TARGET=other",
				"d/Dockerfile:5: COPY source gone-copied is not in the build context; stage copied is not built for TARGET=other",
				"d/Dockerfile:7: COPY source gone-by-index is not in the build context; stage by-index is not built for TARGET=other",
				"d/Dockerfile:9: COPY source gone-mounted is not in the build context; stage mounted is not built for TARGET=other",
				"d/Dockerfile:11: COPY source gone-unused is not in the build context; stage unused is not built for TARGET=other",
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := Check([]byte(df), Context{File: "d/Dockerfile", Files: files, Target: tt.target, TargetSetting: "TARGET"})
			if got := strs(rep.Problems); !slices.Equal(got, tt.problems) {
				t.Errorf("problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.problems, "\n"))
			}
			if got := strs(rep.Warnings); !slices.Equal(got, tt.warnings) {
				t.Errorf("warnings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.warnings, "\n"))
			}
			if rep.Target != tt.built {
				t.Errorf("the build makes %q, want %q", rep.Target, tt.built)
			}
		})
	}
}

// The check of the parsed Dockerfile with the values a standalone one bakes finds what the
// check of that standalone Dockerfile's text finds: one parse a run is enough.
func TestCheckingTheModelWithBakedArgsIsCheckingTheStandaloneDockerfile(t *testing.T) {
	src := []byte(`ARG SRC=app
ARG IMG=busybox:1.36
FROM ${IMG} AS one
ARG SRC
COPY ${SRC}/main.py /
COPY ${SRC}/gone.py /
FROM scratch AS two
ARG SRC=scripts
COPY ${SRC}/run.sh /
FROM one
COPY --from=two /run.sh /
`)
	d, err := dockerfile.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		target string
		args   map[string]string
	}{
		{"", nil},
		{"one", nil},
		{"two", map[string]string{"SRC": "nowhere"}},
		{"", map[string]string{"SRC": "app", "IMG": "${SRC}"}},
		{"stage-2", map[string]string{"SRC": "x'y"}},
	} {
		r, err := d.Standalone(dockerfile.Options{Target: tt.target, Args: tt.args})
		if err != nil {
			t.Fatal(err)
		}
		model := CheckParsed(d, Context{Files: files, Target: r.Target, Args: r.Args, TargetSetting: "TARGET"})
		text := Check(r.Dockerfile, Context{Files: files, TargetSetting: "TARGET"})
		if fmt.Sprint(model.Problems, model.Warnings, model.Target) != fmt.Sprint(text.Problems, text.Warnings, text.Target) {
			t.Errorf("target %q args %v: the model's check\n%v %v %s\nthe text's\n%v %v %s", tt.target, tt.args,
				model.Problems, model.Warnings, model.Target, text.Problems, text.Warnings, text.Target)
		}
		if !slices.Equal(model.Stages, d.Names) {
			t.Errorf("stages %v", model.Stages)
		}
		if tt.args["SRC"] == "nowhere" && len(model.Problems) != 1 {
			t.Errorf("the baked SRC does not reach the COPY it names: %v", model.Problems)
		}
	}
}
