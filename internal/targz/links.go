package targz

import (
	"archive/tar"
	"errors"
	"fmt"
	"path"
	"strings"
)

// Bounds of link resolution: as many links in a chain as Linux follows, a few MiB for the tree
// of links, and a budget of steps (each a map lookup) so that no archive makes the check slow.
const (
	maxHops      = 40
	maxLinks     = 1 << 16
	maxNodes     = 1 << 18
	maxLinkBytes = 4 << 20
	maxSteps     = 1 << 24
)

// ErrEscapes is a name whose resolution leaves the root.
var ErrEscapes = errors.New("resolves outside the archive")

// Links holds an archive's symbolic links where they lie on disk, as a tree of the directories
// that lead to them, to resolve names as the unpacked directory will (inside an os.Root).
// Each step of a resolution is one map lookup, whatever the depth.
type Links struct {
	parent   []int32  // node → its parent; node 0 is the root
	name     []string // node → its name in its parent
	used     []bool   // node → something lies below it
	children map[edge]int32
	target   map[int32]string // node → its target, for the nodes that are links
	bytes    int
	steps    int

	lastDir  string // the directory of the member before, resolved: a tar lists a directory's files together
	lastAt   place
	lastSeen bool
}

type edge struct {
	parent int32
	name   string
}

// place is where a resolution has come to: a node of the tree, then names below it that the
// tree does not hold (no link lies there).
type place struct {
	node   int32
	beyond []string
}

func newLinks() *Links {
	return &Links{parent: []int32{0}, name: []string{"."}, used: []bool{false}, children: map[edge]int32{}, target: map[int32]string{}}
}

// add records the member name: its directory must resolve inside the root through the links
// written before it, as the unpack will write it; a link is kept where it lies on disk.
func (t *Links) add(name string, h *tar.Header) error {
	if len(t.target) == 0 && h.Typeflag != tar.TypeSymlink {
		return nil // no link yet: the name, already checked, is where it says
	}
	d := path.Dir(name)
	dir := t.lastAt
	if !t.lastSeen || d != t.lastDir {
		var err error
		if dir, err = t.walk(place{}, d, true); err != nil {
			return &UnsafeMemberError{name, fmt.Sprintf("its directory %v", err)}
		}
		t.lastDir, t.lastAt, t.lastSeen = d, dir, true
	}
	if h.Typeflag != tar.TypeSymlink {
		return nil
	}
	t.lastSeen = false // the new link may change where names resolve
	node := dir.node
	for _, c := range append(dir.beyond, path.Base(name)) {
		node = t.child(node, c)
	}
	if _, dup := t.target[node]; dup || t.used[node] {
		return &UnsafeMemberError{name, "a link where a link or a directory of links already is"}
	}
	t.bytes += len(name) + len(h.Linkname)
	if len(t.target) >= maxLinks || len(t.parent) > maxNodes || t.bytes > maxLinkBytes {
		return &UnsafeMemberError{name, fmt.Sprintf("more links than are checked (%d, or %d MiB of names)", maxLinks, maxLinkBytes>>20)}
	}
	t.target[node] = h.Linkname
	return nil
}

// child is the node of name below parent, made if it is not there yet.
func (t *Links) child(parent int32, name string) int32 {
	e := edge{parent, name}
	if n, ok := t.children[e]; ok {
		return n
	}
	n := int32(len(t.parent))
	t.parent = append(t.parent, parent)
	t.name = append(t.name, name)
	t.used = append(t.used, false)
	t.used[parent] = true
	t.children[e] = n
	return n
}

// check resolves every link as the finished archive holds them (a builder follows them then).
func (t *Links) check() error {
	for node, target := range t.target {
		if _, err := t.walk(place{node: t.parent[node]}, target, true); err != nil {
			return &UnsafeMemberError{t.pathOf(node), fmt.Sprintf("a link to %q, which %v", target, err)}
		}
	}
	return nil
}

// pathOf is where node lies, for messages.
func (t *Links) pathOf(node int32) string {
	var parts []string
	for ; node != 0; node = t.parent[node] {
		parts = append([]string{t.name[node]}, parts...)
	}
	return strings.Join(parts, "/")
}

// Resolve follows the links in p, a slash-separated name relative to the root, as the
// unpacked archive will; with followLast, a link in the last place is followed too. It fails
// when the name leaves the root (ErrEscapes) or the links do not end.
func (t *Links) Resolve(p string, followLast bool) error {
	if len(t.target) == 0 {
		if escapesRoot(p) {
			return ErrEscapes
		}
		return nil
	}
	_, err := t.walk(place{}, p, followLast)
	return err
}

// walk resolves p from the directory at.
func (t *Links) walk(at place, p string, followLast bool) (place, error) {
	at.beyond = append([]string(nil), at.beyond...)
	stack := []frame{{parts: strings.Split(p, "/")}}
	hops := 0
	for len(stack) > 0 {
		top := len(stack) - 1
		if stack[top].i == len(stack[top].parts) {
			stack = stack[:top]
			continue
		}
		c := stack[top].parts[stack[top].i]
		stack[top].i++
		if t.steps++; t.steps > maxSteps {
			return place{}, fmt.Errorf("has more links to resolve than are checked (%d steps)", maxSteps)
		}
		switch {
		case c == "" || c == ".":
			continue
		case c == ".." && len(at.beyond) > 0:
			at.beyond = at.beyond[:len(at.beyond)-1]
			continue
		case c == "..":
			if at.node == 0 {
				return place{}, ErrEscapes
			}
			at.node = t.parent[at.node]
			continue
		case len(at.beyond) > 0:
			at.beyond = append(at.beyond, c)
			continue
		}
		n, ok := t.children[edge{at.node, c}]
		if !ok {
			at.beyond = append(at.beyond, c)
			continue
		}
		target, isLink := t.target[n]
		if !isLink || (!followLast && lastOf(stack)) {
			at.node = n
			continue
		}
		if hops++; hops > maxHops {
			return place{}, fmt.Errorf("goes through more than %d links", maxHops)
		}
		if path.IsAbs(target) {
			return place{}, ErrEscapes
		}
		stack = append(stack, frame{parts: strings.Split(target, "/")}) // from the link's directory: at
	}
	return at, nil
}

// frame is a name being walked: its parts and the next one to take. A link's target is a
// frame above the name that led to it.
type frame struct {
	parts []string
	i     int
}

// lastOf reports whether the part just taken from the top frame is the last of the walk.
func lastOf(stack []frame) bool {
	for _, f := range stack {
		if f.i < len(f.parts) {
			return false
		}
	}
	return true
}
