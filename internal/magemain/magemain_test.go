package magemain

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Args(tt.in); !slices.Equal(got, tt.want) {
				t.Fatalf("Args(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
