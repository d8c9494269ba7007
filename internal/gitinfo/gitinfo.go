// Package gitinfo asks git about a checkout: the commit, its time, and which files it tracks.
package gitinfo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
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

// IgnoredFiles lists what git ignores below dir (.gitignore and the other exclude files), a
// directory ignored as a whole once, with a slash at the end ("node_modules/").
func IgnoredFiles(ctx context.Context, dir string) ([]string, error) {
	return lsFiles(ctx, dir, "--others", "--ignored", "--exclude-standard", "--directory")
}

// Modified reports whether a tracked file of the work tree containing dir differs from HEAD.
func Modified(ctx context.Context, dir string) (bool, error) {
	out, err := gitContent(ctx, dir, "status", "--porcelain", "-z", "--untracked-files=no", "--ignore-submodules=all")
	return len(out) > 0, err
}

// ChangedFiles lists tracked files below dir whose work tree content differs from HEAD.
func ChangedFiles(ctx context.Context, dir string) ([]string, error) {
	out, err := gitContent(ctx, dir, "diff", "--name-only", "--relative", "-z", "--no-ext-diff", "--no-textconv", "--ignore-submodules=all", "HEAD", "--")
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

// git runs git in dir with the options of commandLine; its errors name the command as a user
// would type it ("git rev-parse --verify HEAD: fatal: ..."), without those options.
func git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	return run(ctx, dir, nil, args...)
}

// gitContent runs a git command that may read the content of work-tree files (status, diff):
// those run the clean filter of a file's "filter" attribute, so the drivers the checkout's own
// configuration defines are switched off first.
func gitContent(ctx context.Context, dir string, args ...string) ([]byte, error) {
	drivers, err := checkoutFilters(ctx, dir)
	if err != nil {
		return nil, err
	}
	return run(ctx, dir, drivers, args...)
}

func run(ctx context.Context, dir string, drivers []string, args ...string) ([]byte, error) {
	out, err := command.Output(ctx, "git", commandLine(dir, drivers, args...)...)
	var cerr *command.Error
	if errors.As(err, &cerr) {
		cerr.Command = "git " + strings.Join(args, " ")
	}
	return out, err
}

// safeConfig is set on every git command: a checkout is data, and its configuration
// (.git/config, which anyone who hands over a checkout writes) must not make git run a program.
// Of what the commands used here read, these settings name one:
var safeConfig = []string{
	"core.fsmonitor=false",         // a hook program that status, diff and ls-files run to find changes
	"core.hooksPath=" + os.DevNull, // hooks: post-index-change runs when a command rewrites the index
	"log.showSignature=false",      // show would run gpg.program to verify a signed HEAD
	"core.quotepath=off",           // names as they are (they are NUL-separated anyway)
	"protocol.allow=never",         // no command here talks to a remote (and so starts no ssh, no helper)
}

// commandLine is the one place git's argument list is built: dir, the safe configuration, the
// filter drivers to switch off (their clean, smudge and process programs emptied, which git
// reads as "no filter", and never required), and args. --no-optional-locks keeps status from
// rewriting the index.
func commandLine(dir string, drivers []string, args ...string) []string {
	line := []string{"-C", dir, "--no-pager", "--no-optional-locks"}
	for _, c := range safeConfig {
		line = append(line, "-c", c)
	}
	for _, d := range drivers {
		line = append(line, "-c", "filter."+d+".clean=", "-c", "filter."+d+".smudge=",
			"-c", "filter."+d+".process=", "-c", "filter."+d+".required=false")
	}
	return append(line, args...)
}

// checkoutFilters lists the filter drivers the repository's own configuration (.git/config,
// the files it includes, config.worktree) defines; the user's global and system ones (git-lfs)
// are theirs and stay.
func checkoutFilters(ctx context.Context, dir string) ([]string, error) {
	out, err := git(ctx, dir, "config", "--show-scope", "--null", "--name-only", "--get-regexp", `^filter\.`)
	var cerr *command.Error
	if errors.As(err, &cerr) && cerr.Stderr == "" { // exit 1: no such setting
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return filterDrivers(out), nil
}

// filterDrivers reads `git config --show-scope --null --name-only` output (scope NUL name NUL
// ...) for the drivers of filter.<driver>.<key> set in the repository's scopes.
func filterDrivers(out []byte) []string {
	fields := splitNUL(out)
	var drivers []string
	for i := 0; i+1 < len(fields); i += 2 {
		scope, name := fields[i], fields[i+1]
		if scope != "local" && scope != "worktree" {
			continue
		}
		d, ok := strings.CutPrefix(name, "filter.")
		if j := strings.LastIndexByte(d, '.'); ok && j > 0 && !slices.Contains(drivers, d[:j]) {
			drivers = append(drivers, d[:j])
		}
	}
	return drivers
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

// SourceURL returns where the repository can be found, for the image's
// org.opencontainers.image.source label: the URL of the remote "origin" (else of the first
// remote) as PublicURL keeps it; "" when there is no remote or it is a local path.
func SourceURL(ctx context.Context, dir string) (string, error) {
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
	return PublicURL(strings.TrimSpace(string(out))), nil
}

// urlSchemes are the schemes of a remote that names a place others can reach.
var urlSchemes = []string{"https", "http", "ssh", "git", "git+ssh", "ssh+git"}

// PublicURL is a remote's address fit to be published in an image: a URL of one of
// urlSchemes without its user, password, query or fragment ("https://user:token@github.com/o/r"
// → "https://github.com/o/r"), or an scp-like address ("git@github.com:o/r", whose user is no
// secret) without a password. Anything else is "": a local path or a file:// URL names a
// directory of the machine that packed (and its user's name), a remote helper (ext::) a command.
func PublicURL(raw string) string {
	if strings.ContainsAny(raw, " \t\r\n") {
		return ""
	}
	if scheme, _, ok := strings.Cut(raw, "://"); ok {
		if !slices.Contains(urlSchemes, strings.ToLower(scheme)) {
			return ""
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return ""
		}
		u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
		return u.String()
	}
	if prefix, _, _ := strings.Cut(raw, "/"); strings.Contains(prefix[:max(0, strings.LastIndex(prefix, "@"))], ":") {
		return "" // user:password@host:path
	}
	// scp-like, as git reads it: [user@]host:path with no slash before the colon; a one-letter
	// host is a Windows drive (C:\src).
	host, path, ok := strings.Cut(raw, ":")
	if !ok || strings.Contains(host, "/") || path == "" || strings.HasPrefix(path, ":") {
		return ""
	}
	user, h, hasUser := strings.Cut(host, "@")
	if !hasUser {
		h, user = user, ""
	}
	if len(h) < 2 || strings.ContainsAny(user, ":") || strings.HasPrefix(h, "-") {
		return ""
	}
	return raw
}
