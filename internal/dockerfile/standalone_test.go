package dockerfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// agentServer is the example's Dockerfile, shaped like the real agent server's.
const agentServer = "../../examples/agent-server/openhands-agent-server/openhands/agent_server/docker/Dockerfile"

func fixture(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(agentServer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parsed is a Dockerfile as BuildKit's dockerfile2llb sees it.
type parsed struct {
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	lex      *shell.Lex
}

func parse(t *testing.T, df []byte) parsed {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(df))
	if err != nil {
		t.Fatalf("%v\n%s", err, df)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, df)
	}
	return parsed{stages, metaArgs, shell.NewLex(res.EscapeToken)}
}

// builds is the stage whose instructions make the image: the last one, or the stage a last
// stage of nothing but labels names in its FROM.
func (p parsed) builds() string {
	last := p.stages[len(p.stages)-1]
	if last.Name != "" || !hasOnlyLabels(last) {
		return last.Name
	}
	for _, s := range p.stages[:len(p.stages)-1] {
		if s.Name == strings.ToLower(last.BaseName) {
			return s.Name
		}
	}
	return last.Name
}

func hasOnlyLabels(st instructions.Stage) bool {
	for _, c := range st.Commands {
		if _, ok := c.(*instructions.LabelCommand); !ok {
			return false
		}
	}
	return true
}

// defaults returns, for each declaration of name (global ones first), the value its default
// expands to as BuildKit expands ARG defaults (no build args given).
func (p parsed) defaults(name string) []string {
	var out []string
	add := func(a instructions.ArgCommand) {
		for _, kv := range a.Args {
			if kv.Key != name {
				continue
			}
			if kv.Value == nil {
				out = append(out, "<no default>")
				continue
			}
			v, _, err := p.lex.ProcessWord(*kv.Value, NewScope())
			if err != nil {
				v = "<" + err.Error() + ">"
			}
			out = append(out, v)
		}
	}
	for _, a := range p.metaArgs {
		add(a)
	}
	for _, st := range p.stages {
		for _, c := range st.Commands {
			if a, ok := c.(*instructions.ArgCommand); ok {
				add(*a)
			}
		}
	}
	return out
}

func (p parsed) labels() map[string]string {
	out := map[string]string{}
	for _, c := range p.stages[len(p.stages)-1].Commands {
		if l, ok := c.(*instructions.LabelCommand); ok {
			for _, kv := range l.Labels {
				v, _, _ := p.lex.ProcessWord(kv.Value, NewScope())
				out[kv.Key] = v
			}
		}
	}
	return out
}

var agentTargets = []string{"builder", "binary-builder", "base-image-minimal", "base-image", "source", "source-minimal", "binary", "binary-minimal"}

func agentOptions(target string) Options {
	return Options{
		Target: target,
		Chosen: "TARGET",
		Args:   map[string]string{"ENABLE_VERTEX": "1", "VSCODE_VERSION": "1.99.0"},
		IfDeclared: map[string]string{
			"BASE_IMAGE":              "ghcr.io/example/base:1.0",
			"OPENHANDS_BUILD_GIT_SHA": "0123456789abcdef0123456789abcdef01234567",
			"OPENHANDS_BUILD_GIT_REF": "refs/heads/main",
			"NOT_DECLARED_ANYWHERE":   "ignored",
		},
		Labels: [][2]string{{"org.opencontainers.image.revision", "0123456789abcdef0123456789abcdef01234567"}, {"dev.runtimebuild.dockerfile", "x/Dockerfile@sha256:00"}},
	}
}

func TestEveryStageOfTheAgentServerIsTheImageOfItsStandaloneDockerfile(t *testing.T) {
	src := fixture(t)
	for _, target := range agentTargets {
		t.Run(target, func(t *testing.T) {
			r, err := Standalone(src, agentOptions(target))
			if err != nil {
				t.Fatal(err)
			}
			p := parse(t, r.Dockerfile)
			if got := p.builds(); got != target || r.Target != target {
				t.Fatalf("the standalone Dockerfile builds %q (reported %q), want %q", got, r.Target, target)
			}
			if r.Appended != (target != "binary-minimal") {
				t.Errorf("appended a FROM: %v; binary-minimal is the last stage already", r.Appended)
			}
			if !bytes.HasPrefix(r.Dockerfile, []byte("# syntax=docker/dockerfile:1.7\n")) {
				t.Errorf("the syntax directive is not first:\n%.80s", r.Dockerfile)
			}
			if l := p.labels(); l["org.opencontainers.image.revision"] != "0123456789abcdef0123456789abcdef01234567" || l["dev.runtimebuild.dockerfile"] != "x/Dockerfile@sha256:00" {
				t.Errorf("final stage labels %v", l)
			}
			golden := filepath.Join("testdata", "standalone", target+".Dockerfile")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, r.Dockerfile, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./internal/dockerfile -update creates it)", err)
			}
			if !bytes.Equal(r.Dockerfile, want) {
				t.Fatalf("standalone Dockerfile differs from %s (go test ./internal/dockerfile -update, then review the diff):\n%s", golden, r.Dockerfile)
			}
		})
	}
}

func TestBuildArgsAreBakedIntoEveryDeclarationGlobalAndStage(t *testing.T) {
	r, err := Standalone(fixture(t), agentOptions("source"))
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, r.Dockerfile)
	sha := "0123456789abcdef0123456789abcdef01234567"
	for name, want := range map[string][]string{
		"BASE_IMAGE":              {"ghcr.io/example/base:1.0"},
		"ENABLE_VERTEX":           {"1", "1"},
		"OPENHANDS_BUILD_GIT_SHA": {sha},
		"OPENHANDS_BUILD_GIT_REF": {"refs/heads/main"},
		"VSCODE_VERSION":          {"1.99.0"},
		"USERNAME":                {"openhands", "<no default>", "<no default>", "<no default>", "<no default>", "<no default>", "<no default>", "<no default>", "<no default>"},
		"DESKTOP_TITLE":           {"OpenHands agent desktop"},
	} {
		if got := p.defaults(name); !slices.Equal(got, want) {
			t.Errorf("ARG %s defaults %q, want %q", name, got, want)
		}
	}
	if r.BaseImage != "ghcr.io/example/base:1.0" {
		t.Errorf("base image %q", r.BaseImage)
	}
	if !slices.Equal(r.Baked, []string{"BASE_IMAGE", "ENABLE_VERTEX", "OPENHANDS_BUILD_GIT_REF", "OPENHANDS_BUILD_GIT_SHA", "VSCODE_VERSION"}) {
		t.Errorf("baked %q", r.Baked)
	}
	// Every line keeps its number: only ARG lines differ from the source.
	src := strings.Split(string(fixture(t)), "\n")
	out := strings.Split(string(r.Dockerfile), "\n")
	for i, l := range src {
		if l != out[i] && !strings.HasPrefix(l, "ARG ") {
			t.Fatalf("line %d changed: %q -> %q", i+1, l, out[i])
		}
	}
}

func TestWithoutBuildArgsTheDockerfilesOwnDefaultsStay(t *testing.T) {
	r, err := Standalone(fixture(t), Options{Target: "binary-minimal"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Dockerfile, fixture(t)) {
		t.Fatalf("nothing to bake, nothing to append, yet the Dockerfile changed:\n%s", r.Dockerfile)
	}
	if r.BaseImage != "nikolaik/python-nodejs:python3.13-nodejs22-slim" {
		t.Fatalf("base image %q, want the Dockerfile's own default", r.BaseImage)
	}
	if b, _ := Standalone(fixture(t), Options{Target: "builder"}); b.BaseImage != "python:3.13-bookworm" {
		t.Fatalf("builder's base image %q", b.BaseImage)
	}
}

func TestValuesSurviveTheParserExactly(t *testing.T) {
	values := []string{
		"two words", `it's "quoted"`, "$HOME and ${UID:-x}", `back\slash`, "trailing space ", "", "=eq=", "`tick`", "'",
	}
	for _, escape := range []string{"", "# escape=`\n"} {
		for _, v := range values {
			src := escape + "ARG V=default\nFROM scratch\nARG V\nLABEL a=b\n"
			r, err := Standalone([]byte(src), Options{Args: map[string]string{"V": v}, Labels: [][2]string{{"v", v}}})
			if err != nil {
				t.Fatal(err)
			}
			p := parse(t, r.Dockerfile)
			if got := p.defaults("V"); !slices.Equal(got, []string{v, v}) {
				t.Errorf("escape %q: value %q came back as %q from:\n%s", escape, v, got, r.Dockerfile)
			}
			if got := p.labels()["v"]; got != v {
				t.Errorf("escape %q: label %q came back as %q", escape, v, got)
			}
		}
	}
}

func TestUnknownTargetAndUndeclaredArgsAreTypedErrors(t *testing.T) {
	_, err := Standalone(fixture(t), Options{Target: "fat"})
	var ut *UnknownTargetError
	if !errors.As(err, &ut) || !slices.Equal(ut.Stages, agentTargets) || !strings.Contains(err.Error(), "base-image-minimal, base-image, source") {
		t.Fatalf("unknown target: %v", err)
	}
	_, err = Standalone(fixture(t), Options{Args: map[string]string{"NOPE": "1", "UID": "2", "ALSO_NOPE": ""}})
	var ua *UndeclaredArgsError
	if !errors.As(err, &ua) || !slices.Equal(ua.Names, []string{"ALSO_NOPE", "NOPE"}) || !strings.Contains(err.Error(), "BASE_IMAGE, DESKTOP_TITLE") {
		t.Fatalf("undeclared args: %v", err)
	}
	_, err = Standalone([]byte("FROM scratch\nCOPY\n"), Options{})
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 {
		t.Fatalf("a bad Dockerfile: %v", err)
	}
}

func TestMultiLineArgsKeepTheLinesBelowInPlace(t *testing.T) {
	src := "ARG A=1 \\\n    B=2\r\nFROM scratch\nARG A \\\n  B\nCOPY x /\n"
	r, err := Standalone([]byte(src), Options{Args: map[string]string{"B": "two"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "ARG A=1 B='two'\n\r\nFROM scratch\nARG A B='two'\n\nCOPY x /\n"
	if string(r.Dockerfile) != want {
		t.Fatalf("got %q, want %q", r.Dockerfile, want)
	}
}

// FuzzStandalone: whatever Dockerfile BuildKit accepts, its standalone one parses too and
// builds the stage asked for, with the value baked.
func FuzzStandalone(f *testing.F) {
	f.Add("ARG V=1\nFROM scratch AS a\nARG V\nFROM a AS b\n", "a", "x y")
	f.Add("# escape=`\nARG V\nFROM scratch\nARG V=\"q\" W \\\n  X=1\n", "", "it's $V")
	f.Fuzz(func(t *testing.T, src, target, value string) {
		if strings.ContainsAny(value, "\r\n") {
			return
		}
		r, err := Standalone([]byte(src), Options{Target: target, IfDeclared: map[string]string{"V": value}, Labels: [][2]string{{"l", value}}})
		if err != nil {
			return
		}
		p := parse(t, r.Dockerfile)
		if got := p.builds(); !strings.EqualFold(got, r.Target) && !strings.HasPrefix(r.Target, "stage-") {
			t.Fatalf("builds %q, want %q:\n%s", got, r.Target, r.Dockerfile)
		}
		for _, v := range p.defaults("V") {
			if v != value {
				t.Fatalf("V = %q, want %q:\n%s", v, value, r.Dockerfile)
			}
		}
	})
}

// Standalone parses src and makes it standalone (Dockerfile.Standalone): the tests' shorthand.
func Standalone(src []byte, opt Options) (Rendered, error) {
	d, err := Parse(src)
	if err != nil {
		return Rendered{}, err
	}
	return d.Standalone(opt)
}
