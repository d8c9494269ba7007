package magemain

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/invocation"
)

func TestArgsMakeTheCompileOutputAbsolute(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(wd, "bin", "runtimebuild")
	tests := []struct {
		name     string
		in, want []string
	}{
		{"a relative path after -compile", []string{"-compile", "./bin/runtimebuild"}, []string{"-compile", bin}},
		{"the --compile spelling", []string{"--compile", "bin/runtimebuild"}, []string{"--compile", bin}},
		{"a path joined with =", []string{"-v", "-compile=bin/runtimebuild"}, []string{"-v", "-compile=" + bin}},
		{"an absolute path is kept", []string{"-compile", "/opt/rb"}, []string{"-compile", "/opt/rb"}},
		{"target arguments are never touched", []string{"image", "-compile", "x"}, []string{"image", "-compile", "x"}},
		{"other flags and targets pass through", []string{"-l"}, []string{"-l"}},
		{"-compile with no path is left to mage", []string{"-compile"}, []string{"-compile"}},
		{"-goos and -goarch with spaces before -compile", []string{"-goos", "linux", "-goarch", "arm64", "-compile", "bin/runtimebuild"},
			[]string{"-goos", "linux", "-goarch", "arm64", "-compile", bin}},
		{"-goos with = before -compile", []string{"-goos=linux", "-compile", "bin/runtimebuild"}, []string{"-goos=linux", "-compile", bin}},
		{"a value that looks like a path is not the output", []string{"-d", "magefiles", "-w", "src", "-compile", "bin/runtimebuild"},
			[]string{"-d", "magefiles", "-w", "src", "-compile", bin}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Args(tt.in); !slices.Equal(got, tt.want) {
				t.Fatalf("Args(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCompileIsStaticUnlessTheUserChoseCGO(t *testing.T) {
	if !Compiles([]string{"-goos", "linux", "-compile", "bin/x"}) || Compiles([]string{"context"}) || Compiles([]string{"image", "-compile", "x"}) {
		t.Fatal("Compiles misreads the command line")
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if got := CompileEnv(env(nil)); !slices.Equal(got, []string{"CGO_ENABLED=0"}) {
		t.Fatalf("CompileEnv = %q", got)
	}
	if got := CompileEnv(env(map[string]string{"CGO_ENABLED": "1"})); got != nil {
		t.Fatalf("CompileEnv overrode the user's CGO_ENABLED: %q", got)
	}
}

func TestTheFirstRunIsToldByTheModuleCache(t *testing.T) {
	cache := t.TempDir()
	gomod := []byte("module x\n\ngo 1.26.0\n\nrequire github.com/BurntSushi/toml v1.0.0\n\nrequire (\n\tgolang.org/x/term v0.47.0\n\tgolang.org/x/sys v0.49.0 // indirect\n)\n")
	if !FirstRun(gomod, cache) {
		t.Fatal("an empty module cache is not a first run")
	}
	for _, m := range []string{"github.com/!burnt!sushi/toml@v1.0.0", "golang.org/x/term@v0.47.0", "golang.org/x/sys@v0.49.0"} {
		if err := os.MkdirAll(filepath.Join(cache, m), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if FirstRun(gomod, cache) {
		t.Fatal("a module cache holding every requirement is a first run")
	}
}

func TestTheEntryVariableIsTheOneInvocationReads(t *testing.T) {
	if EntryEnv != invocation.EntryEnv {
		t.Fatalf("magemain.EntryEnv %q, invocation.EntryEnv %q: the hints would not name go run magefile.go", EntryEnv, invocation.EntryEnv)
	}
}
