// Package dockerfile renders the multi-stage Dockerfile placed at the root of every build context.
package dockerfile

import (
	"bytes"
	"embed"
	"fmt"
	"slices"
	"strings"
	"text/template"

	"github.com/runtimebuild/runtimebuild/internal/exitcode"
)

//go:embed templates/Dockerfile.tmpl
var templates embed.FS

// Required are the files the built-in template names; without them it cannot build.
var Required = []string{"pyproject.toml", "uv.lock", "openhands/agent_server/__main__.py"}

// Data is what a template sees.
type Data struct {
	SHA       string
	ShortSHA  string
	Target    string   // the stage rendered last
	Targets   []string // every target stage, in the contract's order
	Tags      []string
	BaseImage string
	ImageName string
	Files     map[string]bool // paths in the archive, for {{if has "path"}}
}

// PrimaryTag is the first tag.
func (d Data) PrimaryTag() string { return d.Tags[0] }

// Order lists the target stages with Target last.
func (d Data) Order() []string {
	order := slices.DeleteFunc(slices.Clone(d.Targets), func(t string) bool { return t == d.Target })
	return append(order, d.Target)
}

// Builtin returns the built-in template's text.
func Builtin() string {
	b, _ := templates.ReadFile("templates/Dockerfile.tmpl")
	return string(b)
}

// Render executes the template text (the built-in one when text is empty) with data. With the
// built-in template, the files it names must be in data.Files.
func Render(text string, data Data) ([]byte, error) {
	if text == "" {
		text = Builtin()
		var missing []string
		for _, f := range Required {
			if !data.Files[f] {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			return nil, exitcode.Usagef("the generated Dockerfile needs %s in the build context (missing: %s); add them, or set DOCKERFILE to a Dockerfile of the source",
				strings.Join(Required, ", "), strings.Join(missing, ", "))
		}
	}
	var t *template.Template
	t = template.New("Dockerfile").Option("missingkey=error").Funcs(template.FuncMap{
		"join":  strings.Join,
		"has":   func(p string) bool { return data.Files[p] },
		"named": func(name, base string) map[string]string { return map[string]string{"Name": name, "Base": base} },
		"stage": func(name string, d Data) (string, error) {
			var b bytes.Buffer
			err := t.ExecuteTemplate(&b, name, d)
			return b.String(), err
		},
	})
	if _, err := t.Parse(text); err != nil {
		return nil, exitcode.AsUsage(fmt.Errorf("parsing the Dockerfile template: %w", err))
	}
	var out bytes.Buffer
	if err := t.Execute(&out, data); err != nil {
		return nil, exitcode.AsUsage(fmt.Errorf("rendering the Dockerfile template: %w", err))
	}
	// Exactly one final newline, whatever the template's trailing whitespace.
	return append(bytes.TrimRight(out.Bytes(), "\n\t "), '\n'), nil
}
