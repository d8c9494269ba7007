package gitinfo

import (
	"context"
	"errors"
	"path/filepath"
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
	if u, err := RemoteURL(ctx, dir); u != "" || err != nil {
		t.Fatalf("no remote: %q, %v", u, err)
	}
	gittest.Git(t, dir, "remote", "add", "upstream", "https://x:secret@example.com/o/u.git")
	gittest.Git(t, dir, "remote", "add", "origin", "https://user:ghp_token@github.com/o/r.git")
	if u, err := RemoteURL(ctx, dir); u != "https://github.com/o/r.git" || err != nil {
		t.Fatalf("RemoteURL = %q, %v", u, err)
	}
	gittest.Git(t, dir, "checkout", "-q", "--detach")
	if b, err := Branch(ctx, dir); b != "" || err != nil {
		t.Fatalf("detached: Branch = %q, %v", b, err)
	}
	t.Setenv("GIT_CEILING_DIRECTORIES", t.TempDir())
	if _, err := TopLevel(ctx, t.TempDir()); !errors.Is(err, ErrNotRepository) {
		t.Fatalf("outside git: %v", err)
	}
	if got := stripCredentials("git@github.com:o/r.git"); got != "git@github.com:o/r.git" {
		t.Fatalf("scp-like: %q", got)
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
