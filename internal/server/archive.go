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
	_, err := walk(ctx, file, limit, fn)
	return err
}

// walk is walkArchive, returning the archive's links.
func walk(ctx context.Context, file string, limit int64, fn func(name string, h *tar.Header, r io.Reader) error) (*linkTree, error) {
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
	links := &linkTree{links: map[string]string{}}
	for {
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
		if h.Typeflag == tar.TypeDir && path.Clean(h.Name) == "." {
			continue // "./", the root itself, as `tar -C dir .` writes it
		}
		name, err := buildctx.NormalizePath(h.Name)
		if err != nil {
			return nil, unsafeArchive{"refusing archive member: " + err.Error()}
		}
		if len(name) > maxName || len(h.Linkname) > maxName {
			return nil, unsafeArchive{fmt.Sprintf("refusing archive member %.64s…: a name or link longer than %d bytes", name, maxName)}
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeDir, tar.TypeXGlobalHeader:
		case tar.TypeSymlink:
			if path.IsAbs(h.Linkname) || escapesRoot(path.Join(path.Dir(name), h.Linkname)) {
				return nil, unsafeArchive{fmt.Sprintf("refusing archive member %s: a link to %s, outside the archive", name, h.Linkname)}
			}
		case tar.TypeLink:
			if _, err := buildctx.NormalizePath(h.Linkname); err != nil {
				return nil, unsafeArchive{fmt.Sprintf("refusing archive member %s: a hard link to %s, outside the archive", name, h.Linkname)}
			}
			if _, err := links.resolve(h.Linkname, false); err != nil { // as written: "r/../x" is not "x" when r is a link
				return nil, unsafeArchive{fmt.Sprintf("refusing archive member %s: a hard link to %s, which %v", name, h.Linkname, err)}
			}
		default:
			return nil, unsafeArchive{fmt.Sprintf("refusing archive member %s: type %q is neither file, directory nor link", name, h.Typeflag)}
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
// follows, and a budget of steps so that no archive makes the check slow.
const (
	maxName      = 4096
	maxHops      = 40
	maxLinks     = 1 << 16
	maxLinkBytes = 16 << 20
	maxSteps     = 1 << 26
)

// errEscapes is a name whose resolution leaves the root.
var errEscapes = errors.New("resolves outside the archive")

// linkTree holds the archive's symbolic links by where they lie on disk (their parent
// resolved), to resolve names as the unpacked directory will (inside an os.Root).
type linkTree struct {
	links map[string]string // where a link lies → its target
	bytes int
	steps int
}

// add records the member name: its parent must resolve inside the root through the links
// written before it, as the unpack will write it; a link is kept under where it lies.
func (t *linkTree) add(name string, h *tar.Header) error {
	parent, err := t.resolve(path.Dir(name), true)
	if err != nil {
		return unsafeArchive{fmt.Sprintf("refusing archive member %s: its directory %v", name, err)}
	}
	if h.Typeflag != tar.TypeSymlink {
		return nil
	}
	at := path.Join(parent, path.Base(name))
	if _, dup := t.links[at]; dup {
		return unsafeArchive{fmt.Sprintf("refusing archive member %s: a second link at %s", name, at)}
	}
	t.bytes += len(at) + len(h.Linkname)
	if len(t.links) >= maxLinks || t.bytes > maxLinkBytes {
		return unsafeArchive{fmt.Sprintf("refusing archive member %s: more links than the server checks (%d, or %d MiB of names)", name, maxLinks, maxLinkBytes>>20)}
	}
	t.links[at] = h.Linkname
	return nil
}

// check resolves every link as the finished archive holds them (a builder follows them then).
func (t *linkTree) check() error {
	for at, target := range t.links {
		if _, err := t.resolve(at, true); err != nil {
			return unsafeArchive{fmt.Sprintf("refusing archive member %s: a link to %s, which %v", at, target, err)}
		}
	}
	return nil
}

// resolve follows the links in p, a slash-separated name relative to the root, and returns
// the name it comes to on disk; with followLast, a link in the last place is followed too.
// It fails when the name leaves the root or the links do not end.
func (t *linkTree) resolve(p string, followLast bool) (string, error) {
	if len(t.links) == 0 {
		if escapesRoot(p) {
			return "", errEscapes
		}
		return path.Clean(p), nil
	}
	var done []string // resolved components
	todo := strings.Split(p, "/")
	hops := 0
	for len(todo) > 0 {
		if t.steps++; t.steps > maxSteps {
			return "", errors.New("has more links to resolve than the server checks")
		}
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", errEscapes
			}
			done = done[:len(done)-1]
			continue
		}
		target, isLink := t.links[strings.Join(append(done, c), "/")]
		if !isLink || (len(todo) == 0 && !followLast) {
			done = append(done, c)
			continue
		}
		if hops++; hops > maxHops {
			return "", fmt.Errorf("goes through more than %d links", maxHops)
		}
		if path.IsAbs(target) {
			return "", errEscapes
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return strings.Join(done, "/"), nil
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
	links, err := walk(ctx, file, limit, func(name string, h *tar.Header, r io.Reader) error {
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
				_, err = links.resolve(f, true) // as written: "r/../x" is not "x" when r is a link
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
