package server

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/runtimebuild/runtimebuild/internal/dockerfile"
)

// CacheMountError is a RUN --mount=type=cache whose text the Dockerfile does not hold as the
// parser read it (quoted, or split across lines), so that it cannot be given its repository's id.
type CacheMountError struct {
	Line  int
	Mount string
}

func (e *CacheMountError) Error() string {
	return fmt.Sprintf("Dockerfile line %d: cannot give the cache mount %s its repository's id: write it on one line as --mount=type=cache,target=…, unquoted", e.Line, e.Mount)
}

// isolateCacheMounts rewrites every RUN --mount=type=cache so that its id starts with repo
// (the target image's repository): builds of one repository share their cache mounts, two
// repositories never do, whatever ids their Dockerfiles choose. An id defaults to the target
// path, as BuildKit's does; a variable in it is expanded by BuildKit after the repository.
func isolateCacheMounts(src []byte, d *dockerfile.Dockerfile, repo string) ([]byte, error) {
	lines := bytes.SplitAfter(src, []byte("\n"))
	changed := false
	for _, node := range d.AST.AST.Children {
		if !strings.EqualFold(node.Value, "run") || node.StartLine < 1 || node.EndLine > len(lines) {
			continue
		}
		for _, flag := range node.Flags {
			mount, ok := strings.CutPrefix(flag, "--mount=")
			if !ok {
				continue
			}
			rewritten, isCache := cacheMountID(mount, repo)
			if !isCache {
				continue
			}
			region := bytes.Join(lines[node.StartLine-1:node.EndLine], nil)
			i := bytes.Index(region, []byte(flag))
			if i < 0 {
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
	return strings.Join(append(kept, "id="+repo+"/"+strings.TrimPrefix(id, "/")), ","), true
}
