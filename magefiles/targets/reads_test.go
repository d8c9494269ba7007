package targets_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/config"
)

// The "Reads ..." sentence of each target's doc comment (what `-h <target>` prints) names
// exactly the variables config.Sections gives the target: one place says what a target reads.
func TestEachTargetsDocNamesWhatItReads(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "targets.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	parens := regexp.MustCompile(`\s*\([^)]*\)`)
	seen := map[string]bool{}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || !fn.Name.IsExported() || fn.Recv != nil || fn.Doc == nil {
			continue
		}
		target := strings.ToLower(fn.Name.Name)
		seen[target] = true
		want := config.Reads(target)
		if want == nil {
			t.Errorf("target %s has no settings in config.Sections", target)
			continue
		}
		doc := strings.Join(strings.Fields(fn.Doc.Text()), " ")
		_, reads, ok := strings.Cut(doc, "Reads ")
		if !ok {
			t.Errorf("%s's doc says nothing of what it reads", fn.Name.Name)
			continue
		}
		reads = parens.ReplaceAllString(reads, "")
		if i := strings.IndexAny(reads, ".:"); i >= 0 {
			reads = reads[:i]
		}
		var got []string
		for _, part := range strings.Split(strings.ReplaceAll(reads, " and ", ", "), ", ") {
			got = append(got, strings.TrimSpace(part))
		}
		slices.Sort(got)
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			t.Errorf("%s's doc reads\n%q\nconfig.Sections gives it\n%q", fn.Name.Name, got, want)
		}
	}
	for _, name := range config.TargetNames() {
		if !seen[name] {
			t.Errorf("config.Sections names %s, which is no target", name)
		}
	}
}
