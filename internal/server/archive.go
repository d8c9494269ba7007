package server

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/klauspost/pgzip"

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
)

// Kind is what an uploaded archive holds.
type Kind string

// The kinds of archive /build accepts.
const (
	KindContext Kind = "context" // a build context: Dockerfile at the root
	KindImage   Kind = "image"   // a docker save archive: manifest.json at the root
)

// unsafeArchive is an archive refused for what it holds (answered 422).
type unsafeArchive struct{ msg string }

func (u unsafeArchive) Error() string { return u.msg }

// walkArchive reads the gzip tar at file, checking every member before fn sees it: names stay
// inside the root, links point inside it, only files, directories and links, and at most limit
// bytes once decompressed. fn may read the member's content from r. Names and links are
// resolved through the archive's links as they will be on disk: a member written through a
// link, or a link that resolves outside the root once the whole archive is there, is refused.
func walkArchive(ctx context.Context, file string, limit int64, fn func(name string, h *tar.Header, r io.Reader) error) error {
	_, err := walk(ctx, file, limit, maxMembers, fn)
	return err
}

// walk is walkArchive with a bound on the number of members, returning the archive's links.
func walk(ctx context.Context, file string, limit int64, maxCount int, fn func(name string, h *tar.Header, r io.Reader) error) (*linkTree, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := pgzip.NewReader(f)
	if err != nil {
		return nil, unsafeArchive{"the context is not a gzip archive: " + err.Error()}
	}
	defer zr.Close()
	counted := &limitedReader{r: zr, left: limit}
	tr := tar.NewReader(counted)
	links := newLinkTree()
	for members := 0; ; members++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return links, links.check()
		}
		if counted.exceeded {
			return nil, errTooLarge
		}
		if err != nil {
			return nil, unsafeArchive{"the context is not a valid tar.gz: " + err.Error()}
		}
		if members >= maxCount {
			return nil, unsafeArchive{fmt.Sprintf("the archive has more than %d members, more than the server unpacks", maxCount)}
		}
		if h.Typeflag == tar.TypeDir && path.Clean(h.Name) == "." {
			continue // "./", the root itself, as `tar -C dir .` writes it
		}
		name, err := buildctx.NormalizePath(h.Name)
		if err != nil {
			return nil, unsafeArchive{"refusing archive member: " + err.Error()}
		}
		if len(name) > maxName || len(h.Linkname) > maxName {
			return nil, unsafeArchive{fmt.Sprintf("refusing archive member %.64q…: a name or link longer than %d bytes", name, maxName)}
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeDir, tar.TypeXGlobalHeader:
		case tar.TypeSymlink:
			if path.IsAbs(h.Linkname) || escapesRoot(path.Join(path.Dir(name), h.Linkname)) {
				return nil, unsafeArchive{fmt.Sprintf("refusing archive member %q: a link to %q, outside the archive", name, h.Linkname)}
			}
		case tar.TypeLink:
			if _, err := buildctx.NormalizePath(h.Linkname); err != nil {
				return nil, unsafeArchive{fmt.Sprintf("refusing archive member %q: a hard link to %q, outside the archive", name, h.Linkname)}
			}
			if err := links.resolve(h.Linkname, false); err != nil { // as written: "r/../x" is not "x" when r is a link
				return nil, unsafeArchive{fmt.Sprintf("refusing archive member %q: a hard link to %q, which %v", name, h.Linkname, err)}
			}
		default:
			return nil, unsafeArchive{fmt.Sprintf("refusing archive member %q: type %q is neither file, directory nor link", name, h.Typeflag)}
		}
		if err := links.add(name, h); err != nil {
			return nil, err
		}
		if err := fn(name, h, tr); err != nil {
			if counted.exceeded {
				return nil, errTooLarge
			}
			return nil, err
		}
	}
}

// Bounds of link resolution: names as long as PATH_MAX, as many links in a chain as Linux
// follows, a few MiB for the tree of links, and a budget of steps (each a map lookup) so that
// no archive makes the check slow.
const (
	maxMembers   = 1 << 19 // files, directories and links: a builder lists them all in memory
	maxName      = 4096
	maxHops      = 40
	maxLinks     = 1 << 16
	maxNodes     = 1 << 18
	maxLinkBytes = 4 << 20
	maxSteps     = 1 << 24
)

// errEscapes is a name whose resolution leaves the root.
var errEscapes = errors.New("resolves outside the archive")

// linkTree holds the archive's symbolic links where they lie on disk, as a tree of the
// directories that lead to them, to resolve names as the unpacked directory will (inside an
// os.Root). Each step of a resolution is one map lookup, whatever the depth.
type linkTree struct {
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

func newLinkTree() *linkTree {
	return &linkTree{parent: []int32{0}, name: []string{"."}, used: []bool{false}, children: map[edge]int32{}, target: map[int32]string{}}
}

// add records the member name: its directory must resolve inside the root through the links
// written before it, as the unpack will write it; a link is kept where it lies on disk.
func (t *linkTree) add(name string, h *tar.Header) error {
	if len(t.target) == 0 && h.Typeflag != tar.TypeSymlink {
		return nil // no link yet: the name, already checked, is where it says
	}
	d := path.Dir(name)
	dir := t.lastAt
	if !t.lastSeen || d != t.lastDir {
		var err error
		if dir, err = t.walk(place{}, d, true); err != nil {
			return unsafeArchive{fmt.Sprintf("refusing archive member %q: its directory %v", name, err)}
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
		return unsafeArchive{fmt.Sprintf("refusing archive member %q: a link where a link or a directory of links already is", name)}
	}
	t.bytes += len(name) + len(h.Linkname)
	if len(t.target) >= maxLinks || len(t.parent) > maxNodes || t.bytes > maxLinkBytes {
		return unsafeArchive{fmt.Sprintf("refusing archive member %q: more links than the server checks (%d, or %d MiB of names)", name, maxLinks, maxLinkBytes>>20)}
	}
	t.target[node] = h.Linkname
	return nil
}

// child is the node of name below parent, made if it is not there yet.
func (t *linkTree) child(parent int32, name string) int32 {
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
func (t *linkTree) check() error {
	for node, target := range t.target {
		if _, err := t.walk(place{node: t.parent[node]}, target, true); err != nil {
			return unsafeArchive{fmt.Sprintf("refusing archive member %q: a link to %q, which %v", t.pathOf(node), target, err)}
		}
	}
	return nil
}

// pathOf is where node lies, for messages.
func (t *linkTree) pathOf(node int32) string {
	var parts []string
	for ; node != 0; node = t.parent[node] {
		parts = append([]string{t.name[node]}, parts...)
	}
	return strings.Join(parts, "/")
}

// resolve follows the links in p, a slash-separated name relative to the root; with
// followLast, a link in the last place is followed too. It fails when the name leaves the
// root or the links do not end.
func (t *linkTree) resolve(p string, followLast bool) error {
	if len(t.target) == 0 {
		if escapesRoot(p) {
			return errEscapes
		}
		return nil
	}
	_, err := t.walk(place{}, p, followLast)
	return err
}

// walk resolves p from the directory at.
func (t *linkTree) walk(at place, p string, followLast bool) (place, error) {
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
			return place{}, errors.New("has more links to resolve than the server checks")
		}
		switch {
		case c == "" || c == ".":
			continue
		case c == ".." && len(at.beyond) > 0:
			at.beyond = at.beyond[:len(at.beyond)-1]
			continue
		case c == "..":
			if at.node == 0 {
				return place{}, errEscapes
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
			return place{}, errEscapes
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

func escapesRoot(p string) bool {
	p = path.Clean(p)
	return p == ".." || strings.HasPrefix(p, "../")
}

// inspect checks the archive and tells what it holds. An image archive's manifest.json may
// name only files inside the archive.
func inspect(ctx context.Context, file string, limit int64) (Kind, error) {
	var dockerfile bool
	var manifest []byte
	links, err := walk(ctx, file, limit, maxMembers, func(name string, h *tar.Header, r io.Reader) error {
		dockerfile = dockerfile || (name == "Dockerfile" && h.Typeflag == tar.TypeReg)
		if name == "manifest.json" && h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(io.LimitReader(r, maxManifest+1))
			if err != nil {
				return err
			}
			if len(b) > maxManifest {
				return unsafeArchive{fmt.Sprintf("manifest.json is larger than %d KiB", maxManifest>>10)}
			}
			manifest = b
		}
		_, err := io.Copy(io.Discard, r) // counts the content against the limit
		return err
	})
	switch {
	case err != nil:
		return "", err
	case dockerfile:
		return KindContext, nil
	case manifest != nil:
		return KindImage, checkManifest(manifest, links)
	}
	return "", unsafeArchive{"the archive has neither a Dockerfile nor a manifest.json at its root"}
}

// maxManifest bounds the manifest.json of an image archive (docker save writes a few KiB).
const maxManifest = 1 << 20

// checkManifest refuses a manifest.json naming files outside the archive (the builder would
// look for them there). A manifest that does not parse is left to the builder to report.
func checkManifest(b []byte, links *linkTree) error {
	var manifest []struct {
		Config string
		Layers []string
	}
	if json.Unmarshal(b, &manifest) != nil {
		return nil
	}
	for _, m := range manifest {
		for _, f := range append([]string{m.Config}, m.Layers...) {
			_, err := buildctx.NormalizePath(f)
			if err == nil {
				err = links.resolve(f, true) // as written: "r/../x" is not "x" when r is a link
			}
			if err != nil {
				return unsafeArchive{fmt.Sprintf("manifest.json names %s, outside the archive: %v", quoteName(f), err)}
			}
		}
	}
	return nil
}

// readInside reads name (slash-separated, relative) of the unpacked upload in dir, through an
// os.Root: links are followed only while they stay inside dir. At most limit bytes are read.
func readInside(dir, name string, limit int64) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("%s is larger than %d KiB", name, limit>>10)
	}
	return b, err
}

// statInside is os.Stat of name in the unpacked upload in dir, through an os.Root.
func statInside(dir, name string) (fs.FileInfo, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.Stat(name)
}

// unpack extracts the archive into dir through an os.Root, so that nothing can be written
// outside dir whatever the archive holds.
func unpack(ctx context.Context, file, dir string, limit int64) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return walkArchive(ctx, file, limit, func(name string, h *tar.Header, r io.Reader) error {
		if d := path.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err := root.Mkdir(name, 0o755)
			if errors.Is(err, fs.ErrExist) {
				return nil
			}
			return err
		case tar.TypeSymlink:
			return root.Symlink(h.Linkname, name)
		case tar.TypeLink:
			return root.Link(h.Linkname, name)
		case tar.TypeReg:
			mode := os.FileMode(0o644)
			if h.Mode&0o111 != 0 {
				mode = 0o755
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, r); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}
		return nil
	})
}

// limitedReader fails once more than left bytes were read.
type limitedReader struct {
	r        io.Reader
	left     int64
	exceeded bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		l.exceeded = true
		return 0, errTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
