package dockerfile

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Options say how Standalone makes a Dockerfile build one stage with no --target or --build-arg.
type Options struct {
	Target string // the stage to build (case-insensitive); empty: the last one
	// Args are baked into every declaration of each name; a name the Dockerfile does not
	// declare is an *UndeclaredArgsError (what --build-arg would only warn about).
	Args map[string]string
	// IfDeclared are baked like Args where the Dockerfile declares them, and ignored elsewhere.
	IfDeclared map[string]string
	Labels     [][2]string // put on the final stage, in this order
	// Chosen says what chose Target, in the comment above the "FROM <target>" appended when
	// Target is not the last stage (the caller's wording: this package names no setting).
	Chosen string
}

// Rendered is a standalone Dockerfile and what was learnt making it.
type Rendered struct {
	Dockerfile []byte
	Stages     []string          // stage names in order ("stage-N" for unnamed ones)
	Target     string            // the stage the Dockerfile now builds
	Appended   bool              // "FROM <target>" was appended because Target was not the last stage
	Declared   []string          // every ARG name the Dockerfile declares, sorted
	Baked      []string          // the names whose declarations got a value, sorted
	Args       map[string]string // the values baked, by name (Baked's)
	Model      *Dockerfile       // the Dockerfile it was made from: its lines are the same
	// BaseImage is the image Target's chain of stages starts from, with the baked values
	// expanded ("scratch" included); empty when it cannot be known without a build.
	BaseImage string
}

// UnknownTargetError says that no stage has the requested name.
type UnknownTargetError struct {
	Target string
	Stages []string
}

// Error lists the stages there are.
func (e *UnknownTargetError) Error() string {
	return fmt.Sprintf("no stage named %q; the stages are %s", e.Target, strings.Join(e.Stages, ", "))
}

// UndeclaredArgsError says that build args were given for names no ARG declares.
type UndeclaredArgsError struct {
	Names    []string
	Declared []string
}

// Error lists the names no ARG declares and those declared.
func (e *UndeclaredArgsError) Error() string {
	declared := "none"
	if len(e.Declared) > 0 {
		declared = strings.Join(e.Declared, ", ")
	}
	return fmt.Sprintf("no ARG declares %s (declared: %s)", strings.Join(e.Names, ", "), declared)
}

// ParseError is a Dockerfile BuildKit's parser refuses, at the line it names.
type ParseError struct {
	Line int
	Err  error
}

// Error is BuildKit's message without its own "dockerfile parse error on line N:" prefix.
func (e *ParseError) Error() string { return parsePrefix.ReplaceAllString(e.Err.Error(), "") }

// Unwrap is BuildKit's error.
func (e *ParseError) Unwrap() error { return e.Err }

// Standalone rewrites the Dockerfile so that a plain `docker build` of it makes opt.Target
// with the build args baked in, as `--target` and `--build-arg` would. Every line of the
// source keeps its number (an ARG spread over several lines becomes one line and blank ones),
// so that a problem found in the result is at the same line of the source; parser directives
// stay first.
func (d *Dockerfile) Standalone(opt Options) (Rendered, error) {
	out := Rendered{Model: d, Stages: slices.Clone(d.Names), Declared: slices.Clone(d.Declared)}
	var undeclared []string
	bake := map[string]string{}
	for k, v := range opt.IfDeclared {
		if slices.Contains(d.Declared, k) {
			bake[k] = v
		}
	}
	for k, v := range opt.Args {
		if !slices.Contains(d.Declared, k) {
			undeclared = append(undeclared, k)
		}
		bake[k] = v
	}
	if len(undeclared) > 0 {
		sort.Strings(undeclared)
		return Rendered{}, &UndeclaredArgsError{Names: undeclared, Declared: out.Declared}
	}
	for k, v := range bake {
		if strings.ContainsAny(v, "\r\n") {
			return Rendered{}, fmt.Errorf("the value of build arg %s spans lines: a Dockerfile ARG cannot hold it", k)
		}
		out.Baked = append(out.Baked, k)
	}
	sort.Strings(out.Baked)
	out.Args = bake
	target, err := d.Stage(opt.Target) // after the args: a wrong BUILD_ARGS is told first, whatever the target
	if err != nil {
		return Rendered{}, err
	}
	out.Target = out.Stages[target]

	escape := d.AST.EscapeToken
	lines := splitLines(d.Source)
	for _, n := range d.AST.AST.Children {
		if !strings.EqualFold(n.Value, "arg") {
			continue
		}
		var words []string
		changed := false
		for w := n.Next; w != nil; w = w.Next {
			key, _, _ := strings.Cut(w.Value, "=")
			if v, ok := bake[key]; ok {
				words = append(words, key+"="+quote(v, escape))
				changed = true
				continue
			}
			words = append(words, w.Value)
		}
		if !changed {
			continue
		}
		lines[n.StartLine-1] = "ARG " + strings.Join(words, " ") + lineEnd(lines[n.StartLine-1])
		for l := n.StartLine; l < n.EndLine; l++ {
			lines[l] = lineEnd(lines[l])
		}
	}

	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
	}
	if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
		b.WriteString("\n")
	}
	if target != len(d.Stages)-1 {
		fmt.Fprintf(&b, "\n# runtimebuild: the image is the %s stage", out.Target)
		if opt.Chosen != "" {
			fmt.Fprintf(&b, " (%s)", opt.Chosen)
		}
		fmt.Fprintf(&b, "\nFROM %s\n", out.Target)
		out.Appended = true
	}
	if len(opt.Labels) > 0 {
		b.WriteString("LABEL")
		for i, l := range opt.Labels {
			if i > 0 {
				b.WriteString(" " + string(escape) + "\n     ")
			}
			fmt.Fprintf(&b, " %s=%s", l[0], quote(l[1], escape))
		}
		b.WriteString("\n")
	}
	out.Dockerfile = []byte(b.String())
	out.BaseImage = d.BaseImage(target, d.Global(bake))
	return out, nil
}

// quote writes v as one Dockerfile word that the shell-like expansion of ARG defaults and
// LABEL values turns back into exactly v: single quotes, with each quote written as '\”
// (escape being the Dockerfile's escape character).
func quote(v string, escape rune) string {
	return "'" + strings.ReplaceAll(v, "'", "'"+string(escape)+"''") + "'"
}

func splitLines(src []byte) []string {
	if len(src) == 0 {
		return nil
	}
	return strings.SplitAfter(string(src), "\n")
}

// lineEnd is the line ending of l ("\r\n", "\n" or none).
func lineEnd(l string) string {
	switch {
	case strings.HasSuffix(l, "\r\n"):
		return "\r\n"
	case strings.HasSuffix(l, "\n"):
		return "\n"
	}
	return ""
}

var (
	lineInError = regexp.MustCompile(`line (\d+)`)
	parsePrefix = regexp.MustCompile(`^.*line \d+: `)
)

// AsParseError places an error of BuildKit's parser at the line it names (1 when it names none).
func AsParseError(err error) *ParseError {
	line := 1
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		line = le.Locations[0][0].Start.Line
	} else if m := lineInError.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	return &ParseError{Line: line, Err: err}
}
