// Package gittest makes fixture git repositories for tests.
package gittest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
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

// Hostile turns the repository in dir into one whose own configuration tries to make git run
// a program at every occasion the commands of gitinfo could give it: an fsmonitor hook, a
// filter driver (clean and process) on every file, a post-index-change hook, and a signed HEAD
// with gpg.program set. Each program would create a file in marks; the tracked files are left
// with new times, so that status and diff must look at their content. It returns
// marks, which a test checks stays empty.
func Hostile(t testing.TB, dir string) (marks string) {
	t.Helper()
	marks = t.TempDir()
	programs := t.TempDir()
	program := func(name string) string {
		p := filepath.Join(programs, name+".sh")
		script := "#!/bin/sh\ntouch '" + filepath.Join(marks, name) + "'\ncat\n"
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	Write(t, dir, map[string]string{".gitattributes": "* filter=evil diff=evil\n"})
	Git(t, dir, "add", ".gitattributes")
	Git(t, dir, "commit", "-q", "-m", "attributes")
	// A commit carrying a signature, so that showing it verifies the signature with gpg.program.
	body := Git(t, dir, "cat-file", "commit", "HEAD")
	head, rest, _ := strings.Cut(body, "\n\n")
	signed := head + "\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----\n\n" + rest
	cmd := exec.Command("git", "hash-object", "-t", "commit", "-w", "--stdin")
	cmd.Dir, cmd.Env, cmd.Stdin = dir, Env(), strings.NewReader(signed)
	sha, err := cmd.Output()
	if err != nil {
		t.Fatalf("git hash-object: %v", err)
	}
	Git(t, dir, "update-ref", "HEAD", strings.TrimSpace(string(sha)))
	// Every tracked file with a time after the index's: git must read them again to know they
	// did not change.
	later := time.Now().Add(time.Hour)
	for _, f := range strings.Split(strings.TrimSpace(Git(t, dir, "ls-files")), "\n") {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
	}
	for key, name := range map[string]string{
		"core.fsmonitor": "fsmonitor", "filter.evil.clean": "clean", "filter.evil.smudge": "smudge",
		"filter.evil.process": "process", "diff.evil.textconv": "textconv", "diff.external": "external",
		"gpg.program": "gpg", "core.pager": "pager", "core.sshCommand": "ssh",
	} {
		Git(t, dir, "config", key, program(name))
	}
	Git(t, dir, "config", "filter.evil.required", "true")
	Git(t, dir, "config", "log.showSignature", "true")
	Git(t, dir, "config", "core.untrackedCache", "true")
	hooks := filepath.Join(dir, ".git", "hooks")
	if err := os.MkdirAll(hooks, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, hook := range []string{"post-index-change", "post-checkout", "reference-transaction"} {
		if err := os.Symlink(program(hook), filepath.Join(hooks, hook)); err != nil {
			t.Fatal(err)
		}
	}
	return marks
}

// NoMarks fails the test when a program of Hostile ran.
func NoMarks(t testing.TB, marks string) {
	t.Helper()
	ran, err := os.ReadDir(marks)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ran {
		t.Errorf("git ran the checkout's %s program", r.Name())
	}
}
