package gitinfo

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/gittest"
)

func TestHeadIsTheCommitAndItsTime(t *testing.T) {
	dir := gittest.Init(t, t.TempDir(), map[string]string{"a.txt": "a"})
	c, err := Head(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "HEAD"))
	if c.SHA != want || c.Short() != want[:7] || !c.Time.Equal(time.Unix(gittest.CommitTime, 0)) {
		t.Fatalf("Head = %+v, want %s at %d", c, want, gittest.CommitTime)
	}
}

func TestHeadOutsideGitAndBeforeTheFirstCommit(t *testing.T) {
	t.Setenv("GIT_CEILING_DIRECTORIES", t.TempDir()) // no repository above the temporary directory counts
	if _, err := Head(context.Background(), t.TempDir()); !errors.Is(err, ErrNotRepository) {
		t.Fatalf("outside git: %v, want ErrNotRepository", err)
	}
	empty := t.TempDir()
	gittest.Git(t, empty, "init", "-q", "-b", "main")
	if _, err := Head(context.Background(), empty); !errors.Is(err, ErrNoCommit) {
		t.Fatalf("no commit yet: %v, want ErrNoCommit", err)
	}
}

func TestGitErrorsNameTheCommandAsAUserTypesIt(t *testing.T) {
	dir := gittest.Init(t, t.TempDir(), map[string]string{"a.txt": "a"})
	_, err := git(context.Background(), dir, "show", "no-such-revision")
	if err == nil || !strings.HasPrefix(err.Error(), "git show no-such-revision: fatal: ") || strings.Contains(err.Error(), "quotepath") {
		t.Fatalf("err = %v", err)
	}
}

func TestFileListsAreRelativeAndKeepNonASCIINames(t *testing.T) {
	dir := gittest.Init(t, t.TempDir(), map[string]string{"sub/données.txt": "x", "top.txt": "y"})
	gittest.Write(t, dir, map[string]string{"sub/new.txt": "n", "top.txt": "changed"})
	tracked, err := TrackedFiles(context.Background(), dir+"/sub")
	if err != nil || strings.Join(tracked, ",") != "données.txt" {
		t.Fatalf("tracked below sub/: %q, %v", tracked, err)
	}
	untracked, err := UntrackedFiles(context.Background(), dir)
	if err != nil || strings.Join(untracked, ",") != "sub/new.txt" {
		t.Fatalf("untracked: %q, %v", untracked, err)
	}
	changed, err := ChangedFiles(context.Background(), dir)
	if err != nil || strings.Join(changed, ",") != "top.txt" {
		t.Fatalf("changed: %q, %v", changed, err)
	}
}

func TestTopLevelBranchAndRemote(t *testing.T) {
	ctx := context.Background()
	dir := gittest.Init(t, t.TempDir(), map[string]string{"sub/a.txt": "a"})
	top, err := TopLevel(ctx, dir+"/sub")
	if err != nil || top != resolved(t, dir) {
		t.Fatalf("TopLevel(sub) = %q, %v; want %q", top, err, dir)
	}
	if b, err := Branch(ctx, dir); b != "main" || err != nil {
		t.Fatalf("Branch = %q, %v", b, err)
	}
	if u, err := SourceURL(ctx, dir); u != "" || err != nil {
		t.Fatalf("no remote: %q, %v", u, err)
	}
	gittest.Git(t, dir, "remote", "add", "upstream", "https://x:secret@example.com/o/u.git")
	gittest.Git(t, dir, "remote", "add", "origin", "https://user:ghp_token@github.com/o/r.git")
	if u, err := SourceURL(ctx, dir); u != "https://github.com/o/r.git" || err != nil {
		t.Fatalf("SourceURL = %q, %v", u, err)
	}
	gittest.Git(t, dir, "remote", "set-url", "origin", "/home/someone/checkout")
	if u, err := SourceURL(ctx, dir); u != "" || err != nil {
		t.Fatalf("a local origin: SourceURL = %q, %v", u, err)
	}
	gittest.Git(t, dir, "checkout", "-q", "--detach")
	if b, err := Branch(ctx, dir); b != "" || err != nil {
		t.Fatalf("detached: Branch = %q, %v", b, err)
	}
	t.Setenv("GIT_CEILING_DIRECTORIES", t.TempDir())
	if _, err := TopLevel(ctx, t.TempDir()); !errors.Is(err, ErrNotRepository) {
		t.Fatalf("outside git: %v", err)
	}
}

func resolved(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOnlyAddressesOthersCanReachBecomeTheSourceLabel(t *testing.T) {
	for raw, want := range map[string]string{
		"https://github.com/o/r.git":                      "https://github.com/o/r.git",
		"https://user:ghp_token@github.com/o/r.git":       "https://github.com/o/r.git",
		"https://github.com/o/r.git?private_token=x#frag": "https://github.com/o/r.git",
		"HTTP://example.com/r":                            "http://example.com/r",
		"ssh://git:pw@example.com:2222/o/r.git":           "ssh://example.com:2222/o/r.git",
		"git://example.com/r.git":                         "git://example.com/r.git",
		"git@github.com:o/r.git":                          "git@github.com:o/r.git",
		"github.com:o/r.git":                              "github.com:o/r.git",
		"user:password@github.com:o/r.git":                "",
		"/home/someone/checkout":                          "",
		"../sibling":                                      "",
		"./here:there":                                    "",
		"C:\\src\\checkout":                               "",
		"C:/src/checkout":                                 "",
		"file:///home/someone/checkout":                   "",
		"ext::sh -c touch% /tmp/pwned":                    "",
		"fd::17":                                          "",
		"https://":                                        "",
		"https://example.com/r\nInjected: label":          "",
		"-oProxyCommand=touch:/x":                         "",
		"":                                                "",
	} {
		if got := PublicURL(raw); got != want {
			t.Errorf("PublicURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestGitRunsNothingTheCheckoutConfigures(t *testing.T) {
	ctx := context.Background()
	dir := gittest.Init(t, t.TempDir(), map[string]string{"a.txt": "a", "sub/b.sh": "#!/bin/sh\n"})
	marks := gittest.Hostile(t, dir)
	gittest.Write(t, dir, map[string]string{"new.txt": "n"})
	if !IsRepository(ctx, dir) {
		t.Fatal("IsRepository = false")
	}
	if _, err := Head(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := TopLevel(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Branch(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := SourceURL(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := TrackedFiles(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := UntrackedFiles(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := IgnoredFiles(ctx, dir); err != nil {
		t.Fatal(err)
	}
	changed, err := ChangedFiles(ctx, dir)
	if err != nil || len(changed) != 0 {
		t.Fatalf("ChangedFiles = %q, %v", changed, err)
	}
	if modified, err := Modified(ctx, dir); err != nil || modified {
		t.Fatalf("Modified = %v, %v", modified, err)
	}
	gittest.NoMarks(t, marks)

	// The fixture is hostile indeed: git as a user runs it ran the checkout's programs.
	for _, args := range [][]string{{"status", "--porcelain"}, {"show", "-s", "HEAD"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, gittest.Env()
		_ = cmd.Run() // the filter fails it: what it ran is the point
	}
	ran, _ := os.ReadDir(marks)
	var names []string
	for _, r := range ran {
		names = append(names, r.Name())
	}
	for _, want := range []string{"fsmonitor", "process", "gpg"} {
		if !slices.Contains(names, want) {
			t.Errorf("plain git did not run the %s program (ran %q): the fixture proves nothing", want, names)
		}
	}
}

func TestFilterDriversOfTheCheckoutAreSwitchedOff(t *testing.T) {
	out := []byte("global\x00filter.lfs.clean\x00local\x00filter.evil.clean\x00local\x00filter.evil.process\x00worktree\x00filter.a.b.smudge\x00local\x00filter.\x00")
	if got := filterDrivers(out); strings.Join(got, ",") != "evil,a.b" {
		t.Fatalf("filterDrivers = %q", got)
	}
	line := strings.Join(commandLine("/src", []string{"evil"}, "status"), " ")
	for _, want := range []string{"-C /src --no-pager --no-optional-locks", "-c core.fsmonitor=false", "-c filter.evil.process= ", "-c filter.evil.required=false status"} {
		if !strings.Contains(line, want) {
			t.Errorf("command line %q lacks %q", line, want)
		}
	}
}
