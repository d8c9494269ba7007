// Package gitinfo asks git about a checkout: the commit, its time, and which files it tracks.
package gitinfo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/command"
)

// Unknown is the SHA of a source outside git.
const Unknown = "unknown"

// ErrNotRepository says that the directory is not inside a git work tree (or git is missing).
var ErrNotRepository = errors.New("not a git repository")

// ErrNoCommit says that the repository has no commit yet.
var ErrNoCommit = errors.New("the repository has no commit yet")

// Commit is what the build records of the source's revision.
type Commit struct {
	SHA  string
	Time time.Time // HEAD's committer time; zero outside git
}

// Short is the first seven characters of the SHA, as git abbreviates it.
func (c Commit) Short() string {
	if len(c.SHA) > 7 {
		return c.SHA[:7]
	}
	return c.SHA
}

// Head returns HEAD of the work tree containing dir; ErrNotRepository outside git.
func Head(ctx context.Context, dir string) (Commit, error) {
	if !IsRepository(ctx, dir) {
		return Commit{}, ErrNotRepository
	}
	out, err := git(ctx, dir, "rev-parse", "-q", "--verify", "HEAD^{commit}")
	var cerr *command.Error
	if errors.As(err, &cerr) && cerr.Stderr == "" { // -q: no HEAD to verify, and git says nothing
		return Commit{}, ErrNoCommit
	}
	if err != nil {
		return Commit{}, err
	}
	sha := strings.TrimSpace(string(out))
	out, err = git(ctx, dir, "show", "-s", "--format=%ct", sha)
	if err != nil {
		return Commit{}, err
	}
	secs, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || sha == "" {
		return Commit{}, fmt.Errorf("git show -s --format=%%ct %s: unexpected output %q", sha, out)
	}
	return Commit{SHA: sha, Time: time.Unix(secs, 0).UTC()}, nil
}

// IsRepository reports whether dir is inside a git work tree.
func IsRepository(ctx context.Context, dir string) bool {
	if _, err := exec.LookPath("git"); err != nil {
		return false
	}
	out, err := git(ctx, dir, "rev-parse", "--is-inside-work-tree")
	return err == nil && strings.TrimSpace(string(out)) == "true"
}

// TrackedFiles lists the files git tracks below dir, relative to dir, with forward slashes.
// Files deleted in the work tree are still listed; the caller skips what it cannot find.
func TrackedFiles(ctx context.Context, dir string) ([]string, error) {
	return lsFiles(ctx, dir, "--cached")
}

// UntrackedFiles lists files below dir that git neither tracks nor ignores.
func UntrackedFiles(ctx context.Context, dir string) ([]string, error) {
	return lsFiles(ctx, dir, "--others", "--exclude-standard")
}

// ChangedFiles lists tracked files below dir whose work tree content differs from HEAD.
func ChangedFiles(ctx context.Context, dir string) ([]string, error) {
	out, err := git(ctx, dir, "diff", "--name-only", "--relative", "-z", "HEAD", "--")
	if err != nil {
		return nil, err
	}
	return splitNUL(out), nil
}

func lsFiles(ctx context.Context, dir string, args ...string) ([]string, error) {
	out, err := git(ctx, dir, append([]string{"ls-files", "-z"}, args...)...)
	if err != nil {
		return nil, err
	}
	return splitNUL(out), nil
}

// git runs git in dir; its errors name the command as a user would type it ("git rev-parse
// --verify HEAD: fatal: ..."), without the options added here.
func git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	// core.quotepath=off keeps non-ASCII names as they are (they are NUL-separated anyway).
	out, err := command.Output(ctx, "git", append([]string{"-C", dir, "-c", "core.quotepath=off"}, args...)...)
	var cerr *command.Error
	if errors.As(err, &cerr) {
		cerr.Command = "git " + strings.Join(args, " ")
	}
	return out, err
}

func splitNUL(b []byte) []string {
	var out []string
	for _, f := range bytes.Split(b, []byte{0}) {
		if len(f) > 0 {
			out = append(out, string(f))
		}
	}
	return out
}

// TopLevel returns the top of the git work tree containing dir; ErrNotRepository outside git.
func TopLevel(ctx context.Context, dir string) (string, error) {
	if !IsRepository(ctx, dir) {
		return "", ErrNotRepository
	}
	out, err := git(ctx, dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// Branch returns the branch checked out in dir's work tree; "" on a detached HEAD.
func Branch(ctx context.Context, dir string) (string, error) {
	out, err := git(ctx, dir, "symbolic-ref", "-q", "--short", "HEAD")
	var cerr *command.Error
	if errors.As(err, &cerr) && cerr.Stderr == "" { // -q: detached, and git says nothing
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// RemoteURL returns the URL of the remote "origin" (else of the first remote) without any
// credentials it holds; "" when the repository has no remote.
func RemoteURL(ctx context.Context, dir string) (string, error) {
	out, err := git(ctx, dir, "remote")
	if err != nil {
		return "", err
	}
	remotes := strings.Fields(string(out))
	if len(remotes) == 0 {
		return "", nil
	}
	name := remotes[0]
	if slices.Contains(remotes, "origin") {
		name = "origin"
	}
	out, err = git(ctx, dir, "remote", "get-url", name)
	if err != nil {
		return "", err
	}
	return stripCredentials(strings.TrimSpace(string(out))), nil
}

// stripCredentials removes a user name and password from a URL
// ("https://user:token@github.com/o/r" → "https://github.com/o/r"); scp-like addresses
// ("git@github.com:o/r") keep their user, which is not a secret.
func stripCredentials(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}
