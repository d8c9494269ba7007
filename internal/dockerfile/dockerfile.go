// Package dockerfile is the one model of a Dockerfile (Parse: BuildKit's syntax tree, the stages
// and the ARG scope) and what is made from it: the standalone Dockerfile placed at the root of
// every build context, and the built-in template it may be rendered from.
package dockerfile

import (
	"bytes"
	"embed"
	"fmt"
	"slices"
	"strings"
	"text/template"
)

//go:embed templates/Dockerfile.tmpl
var templates embed.FS

// required are the files the built-in template names; without them it cannot build.
var required = []string{"pyproject.toml", "uv.lock", "openhands/agent_server/__main__.py"}

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

// builtin returns the built-in template's text.
func builtin() string {
	b, _ := templates.ReadFile("templates/Dockerfile.tmpl")
	return string(b)
}

// MissingFilesError is the built-in template rendered for a build context that lacks files
// it needs.
type MissingFilesError struct {
	Needs   []string // every file the template needs (required)
	Missing []string // those the build context lacks
}

func (e *MissingFilesError) Error() string {
	return fmt.Sprintf("the generated Dockerfile needs %s in the build context (missing: %s)", strings.Join(e.Needs, ", "), strings.Join(e.Missing, ", "))
}

// TemplateError is a template that does not parse, or fails as it renders.
type TemplateError struct {
	Op  string // "parsing" or "rendering"
	Err error
}

func (e *TemplateError) Error() string { return e.Op + " the Dockerfile template: " + e.Err.Error() }

// Unwrap returns the template package's error.
func (e *TemplateError) Unwrap() error { return e.Err }

// Render executes the template text (the built-in one when text is empty) with data. With the
// built-in template, the files it names must be in data.Files (else a *MissingFilesError); a
// template that fails is a *TemplateError.
func Render(text string, data Data) ([]byte, error) {
	if text == "" {
		text = builtin()
		var missing []string
		for _, f := range required {
			if !data.Files[f] {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			return nil, &MissingFilesError{Needs: slices.Clone(required), Missing: missing}
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
		return nil, &TemplateError{Op: "parsing", Err: err}
	}
	var out bytes.Buffer
	if err := t.Execute(&out, data); err != nil {
		return nil, &TemplateError{Op: "rendering", Err: err}
	}
	// Exactly one final newline, whatever the template's trailing whitespace.
	return append(bytes.TrimRight(out.Bytes(), "\n\t "), '\n'), nil
}
