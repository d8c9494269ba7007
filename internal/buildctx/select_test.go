package buildctx

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestFilter(t *testing.T) {
	files := []string{
		"Dockerfile", "README.md", "docs/guide.md", "docs/keep.md", "src/app.py", "src/app.pyc",
		"src/__pycache__/app.cpython-312.pyc", "src/pkg.egg-info/PKG-INFO", "node_modules/x/index.js",
		"web/node_modules/y/index.js", "build/out.bin", "build/keep/me.txt", "a/b/c/secret.log",
		"logs/x.log", "runtime-build/old.tar.gz", ".git/config", "src/.DS_Store", "tests/test_app.py",
	}
	tests := []struct {
		name    string
		rules   Rules
		want    []string
		wantErr *PatternError // List and Pattern, and whether Err is set
	}{
		{
			name:  "without rules only the default excludes apply, at any depth",
			rules: Rules{},
			want: []string{"Dockerfile", "README.md", "a/b/c/secret.log", "build/keep/me.txt", "build/out.bin",
				"docs/guide.md", "docs/keep.md", "logs/x.log", "runtime-build/old.tar.gz", "src/app.py", "tests/test_app.py"},
		},
		{
			name:  "a plain pattern is anchored at the root",
			rules: Rules{DockerIgnore: []string{"*.md"}},
			want: []string{"Dockerfile", "a/b/c/secret.log", "build/keep/me.txt", "build/out.bin", "docs/guide.md",
				"docs/keep.md", "logs/x.log", "runtime-build/old.tar.gz", "src/app.py", "tests/test_app.py"},
		},
		{
			name:  "** matches any number of directories",
			rules: Rules{DockerIgnore: []string{"**/*.log", "**/*.md"}},
			want:  []string{"Dockerfile", "build/keep/me.txt", "build/out.bin", "runtime-build/old.tar.gz", "src/app.py", "tests/test_app.py"},
		},
		{
			name:  "! re-includes what an earlier line excluded, and the last match wins",
			rules: Rules{DockerIgnore: []string{"docs", "!docs/keep.md", "build", "!build/keep", "build/keep/me.txt"}},
			want: []string{"Dockerfile", "README.md", "a/b/c/secret.log", "docs/keep.md", "logs/x.log",
				"runtime-build/old.tar.gz", "src/app.py", "tests/test_app.py"},
		},
		{
			name:  "a directory pattern excludes everything below it",
			rules: Rules{DockerIgnore: []string{"tests/", "a"}},
			want: []string{"Dockerfile", "README.md", "build/keep/me.txt", "build/out.bin", "docs/guide.md", "docs/keep.md",
				"logs/x.log", "runtime-build/old.tar.gz", "src/app.py"},
		},
		{
			name:  "! cannot bring back the default excludes",
			rules: Rules{DockerIgnore: []string{"!**/*.pyc", "!node_modules"}},
			want: []string{"Dockerfile", "README.md", "a/b/c/secret.log", "build/keep/me.txt", "build/out.bin",
				"docs/guide.md", "docs/keep.md", "logs/x.log", "runtime-build/old.tar.gz", "src/app.py", "tests/test_app.py"},
		},
		{
			name:  "the output directory is never packed",
			rules: Rules{Exclude: []string{"runtime-build"}, DockerIgnore: []string{"!runtime-build"}},
			want: []string{"Dockerfile", "README.md", "a/b/c/secret.log", "build/keep/me.txt", "build/out.bin",
				"docs/guide.md", "docs/keep.md", "logs/x.log", "src/app.py", "tests/test_app.py"},
		},
		{
			name:  "INCLUDE keeps only matching paths and what lies below them",
			rules: Rules{Include: []string{"src", "*.md"}},
			want:  []string{"README.md", "src/app.py"},
		},
		{
			name:    "an INCLUDE pattern that matches nothing is a pattern error",
			rules:   Rules{Include: []string{"src", "nothing/here"}},
			wantErr: &PatternError{List: IncludePatterns, Pattern: "nothing/here"},
		},
		{
			name:    "an INCLUDE pattern matching only excluded files matches nothing",
			rules:   Rules{Include: []string{"docs"}, DockerIgnore: []string{"docs"}},
			wantErr: &PatternError{List: IncludePatterns, Pattern: "docs"},
		},
		{
			name:    "a malformed .dockerignore pattern is a pattern error",
			rules:   Rules{DockerIgnore: []string{"[z-a"}, IgnoreFile: "app/Dockerfile.dockerignore"},
			wantErr: &PatternError{List: IgnorePatterns, File: "app/Dockerfile.dockerignore", Err: errors.New("")},
		},
		{
			name:    "a malformed INCLUDE pattern is a pattern error naming it",
			rules:   Rules{Include: []string{"src", "[z-a"}},
			wantErr: &PatternError{List: IncludePatterns, Pattern: "[z-a", Err: errors.New("")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Filter(files, tt.rules)
			if tt.wantErr != nil {
				var pe *PatternError
				if !errors.As(err, &pe) || pe.List != tt.wantErr.List || pe.File != tt.wantErr.File || pe.Pattern != tt.wantErr.Pattern || (pe.Err == nil) != (tt.wantErr.Err == nil) {
					t.Fatalf("err = %#v, want a pattern error like %#v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestFilterRefusesPathsLeavingTheRoot(t *testing.T) {
	_, err := Filter([]string{"ok.txt", "../outside"}, Rules{})
	if err == nil || !strings.Contains(err.Error(), "leaves the root") {
		t.Fatalf("err = %v", err)
	}
}

func TestNormalizePath(t *testing.T) {
	good := map[string]string{
		"a/b": "a/b", "./a//b/": "a/b", "a/./b/../c": "a/c", `dir\file`: "dir/file", "ünïcödé/名前.txt": "ünïcödé/名前.txt",
	}
	for in, want := range good {
		if got, err := NormalizePath(in); err != nil || got != want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "..", "../x", "a/../../x", "/etc/passwd", "C:/x", "a\x00b", "\xff"} {
		if got, err := NormalizePath(in); err == nil {
			t.Errorf("NormalizePath(%q) = %q, want an error", in, got)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "/abs", "a/./b//c/..", `a\..\..\b`, "名前", "", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NormalizePath(in)
		if err != nil {
			return
		}
		if got == "" || got == "." || strings.HasPrefix(got, "/") || strings.Contains(got, `\`) {
			t.Fatalf("NormalizePath(%q) = %q: not a clean relative path", in, got)
		}
		for _, el := range strings.Split(got, "/") {
			if el == ".." || el == "." || el == "" {
				t.Fatalf("NormalizePath(%q) = %q has element %q", in, got, el)
			}
		}
		if again, err := NormalizePath(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
		if escapes("x", got) {
			t.Fatalf("%q escapes the root", got)
		}
	})
}
