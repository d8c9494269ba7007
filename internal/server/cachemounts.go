package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/runtimebuild/runtimebuild/internal/dockerfile"
)

// CacheMountError is a RUN --mount=type=cache whose text the Dockerfile does not hold as the
// parser read it (quoted, split across lines, or written twice), so that it cannot be given its repository's id.
type CacheMountError struct {
	Line  int
	Mount string
}

func (e *CacheMountError) Error() string {
	return fmt.Sprintf("Dockerfile line %d: cannot give the cache mount %s its repository's id: write it once, on one line, as --mount=type=cache,target=…, unquoted", e.Line, e.Mount)
}

// isolateCacheMounts rewrites every RUN --mount=type=cache (ONBUILD RUN too: its trigger runs
// in a stage built FROM this one) so that its id is its repository's (cacheNamespace): builds
// of one repository share their cache mounts, two repositories never do, whatever ids their
// Dockerfiles choose. An id defaults to the target path, as BuildKit's does; a variable in it
// is expanded by BuildKit after the namespace. The flag is found in the text as the parser read
// it: written exactly once in the instruction's lines, outside the comment lines a continuation
// may hold (a copy in a comment would otherwise take the rewrite and leave the real mount
// global); anything else is refused with its line.
func isolateCacheMounts(src []byte, d *dockerfile.Dockerfile, repo string) ([]byte, error) {
	lines := bytes.SplitAfter(src, []byte("\n"))
	changed := false
	for _, node := range d.AST.AST.Children {
		inner := node
		if strings.EqualFold(node.Value, "onbuild") && node.Next != nil && len(node.Next.Children) > 0 {
			inner = node.Next.Children[0]
		}
		if !strings.EqualFold(inner.Value, "run") || node.StartLine < 1 || node.EndLine > len(lines) {
			continue
		}
		for _, flag := range inner.Flags {
			mount, ok := strings.CutPrefix(flag, "--mount=")
			if !ok {
				continue
			}
			rewritten, isCache := cacheMountID(mount, repo)
			if !isCache {
				continue
			}
			region := bytes.Join(lines[node.StartLine-1:node.EndLine], nil)
			i, ok := onlyOccurrence(region, flag)
			if !ok {
				return nil, &CacheMountError{Line: node.StartLine, Mount: flag}
			}
			region = append(region[:i:i], append([]byte("--mount="+rewritten), region[i+len(flag):]...)...)
			// The region, newlines and all, takes the place of its lines: the text is the same but
			// for the flag, every line where it was.
			lines[node.StartLine-1] = region
			for l := node.StartLine; l < node.EndLine; l++ {
				lines[l] = nil
			}
			changed = true
		}
	}
	if !changed {
		return src, nil
	}
	return bytes.Join(lines, nil), nil
}

// onlyOccurrence is where flag stands in region as a word of its own (whitespace or the
// region's start before it, whitespace or its end after), outside comment lines; false unless
// it stands there exactly once.
func onlyOccurrence(region []byte, flag string) (int, bool) {
	at, n := -1, 0
	offset := 0
	for _, line := range bytes.SplitAfter(region, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] == '#' {
			offset += len(line)
			continue
		}
		for from := 0; ; {
			i := bytes.Index(line[from:], []byte(flag))
			if i < 0 {
				break
			}
			i += from
			before := i == 0 || isSpace(line[i-1])
			after := i+len(flag) == len(line) || isSpace(line[i+len(flag)])
			if before && after {
				at, n = offset+i, n+1
			}
			from = i + 1
		}
		offset += len(line)
	}
	return at, n == 1
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

// cacheNamespace is the prefix every cache mount id of repo gets: a hash, so that no two
// repositories' ids can meet ("team/ca" with id "x/k" and "team/ca/x" with id "k" would, were
// the repository written out).
func cacheNamespace(repo string) string {
	sum := sha256.Sum256([]byte(repo))
	return "rb-" + hex.EncodeToString(sum[:8])
}

// cacheMountID is a mount's options with its id prefixed by repo, and whether it is a cache
// mount at all.
func cacheMountID(mount, repo string) (string, bool) {
	fields := strings.Split(mount, ",")
	isCache := false
	id, target := "", ""
	kept := fields[:0:0]
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "type":
			isCache = strings.EqualFold(v, "cache")
		case "id":
			id = v
			continue
		case "target", "dst", "destination":
			target = v
		}
		kept = append(kept, f)
	}
	if !isCache {
		return mount, false
	}
	if id == "" {
		id = target
	}
	return strings.Join(append(kept, "id="+cacheNamespace(repo)+"-"+id), ","), true
}
