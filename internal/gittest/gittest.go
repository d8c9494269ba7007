// Package gittest makes fixture git repositories for tests.
package gittest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// CommitTime is the committer date of every fixture commit (2024-01-02T03:04:05Z).
const CommitTime = 1704164645

// Env is the environment git runs with in fixtures: no user or system configuration, fixed
// identities and dates.
func Env() []string {
	return append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Fixture", "GIT_AUTHOR_EMAIL=fixture@example.com",
		"GIT_COMMITTER_NAME=Fixture", "GIT_COMMITTER_EMAIL=fixture@example.com",
		"GIT_AUTHOR_DATE=@1704164645 +0000", "GIT_COMMITTER_DATE=@1704164645 +0000",
	)
}

// Init makes a repository in dir holding files (path → content; a content starting with
// "link:" makes a symbolic link to the rest), commits them all, and returns dir.
func Init(t testing.TB, dir string, files map[string]string) string {
	t.Helper()
	Write(t, dir, files)
	Git(t, dir, "init", "-q", "-b", "main")
	Git(t, dir, "add", "-A")
	Git(t, dir, "commit", "-q", "-m", "fixture")
	return dir
}

// Write creates files below dir, in sorted order.
func Write(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		content := files[n]
		if target, ok := strings.CutPrefix(content, "link:"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// Git runs git in dir with the fixture environment and returns its output.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Project is a minimal uv project the built-in Dockerfile template can build.
func Project() map[string]string {
	return map[string]string{
		"pyproject.toml":                     "[project]\nname = \"demo\"\nversion = \"0.1.0\"\n",
		"uv.lock":                            "version = 1\n",
		"README.md":                          "# demo\n",
		"openhands/__init__.py":              "",
		"openhands/agent_server/__init__.py": "",
		"openhands/agent_server/__main__.py": "print('hello')\n",
		"openhands/sdk/__init__.py":          "",
		"scripts/run.sh":                     "#!/bin/sh\necho run\n",
	}
}
