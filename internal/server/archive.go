package server

import (
	"archive/tar"
	"context"
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
// bytes once decompressed. fn may read the member's content from r.
func walkArchive(ctx context.Context, file string, limit int64, fn func(name string, h *tar.Header, r io.Reader) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := pgzip.NewReader(f)
	if err != nil {
		return unsafeArchive{"the context is not a gzip archive: " + err.Error()}
	}
	defer zr.Close()
	counted := &limitedReader{r: zr, left: limit}
	tr := tar.NewReader(counted)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if counted.exceeded {
			return errTooLarge
		}
		if err != nil {
			return unsafeArchive{"the context is not a valid tar.gz: " + err.Error()}
		}
		if h.Typeflag == tar.TypeDir && path.Clean(h.Name) == "." {
			continue // "./", the root itself, as `tar -C dir .` writes it
		}
		name, err := buildctx.NormalizePath(h.Name)
		if err != nil {
			return unsafeArchive{"refusing archive member: " + err.Error()}
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeDir, tar.TypeXGlobalHeader:
		case tar.TypeSymlink:
			if path.IsAbs(h.Linkname) || escapesRoot(path.Join(path.Dir(name), h.Linkname)) {
				return unsafeArchive{fmt.Sprintf("refusing archive member %s: a link to %s, outside the archive", name, h.Linkname)}
			}
		case tar.TypeLink:
			if _, err := buildctx.NormalizePath(h.Linkname); err != nil {
				return unsafeArchive{fmt.Sprintf("refusing archive member %s: a hard link to %s, outside the archive", name, h.Linkname)}
			}
		default:
			return unsafeArchive{fmt.Sprintf("refusing archive member %s: type %q is neither file, directory nor link", name, h.Typeflag)}
		}
		if err := fn(name, h, tr); err != nil {
			if counted.exceeded {
				return errTooLarge
			}
			return err
		}
	}
}

func escapesRoot(p string) bool {
	p = path.Clean(p)
	return p == ".." || strings.HasPrefix(p, "../")
}

// inspect checks the archive and tells what it holds.
func inspect(ctx context.Context, file string, limit int64) (Kind, error) {
	var dockerfile, manifest bool
	err := walkArchive(ctx, file, limit, func(name string, h *tar.Header, r io.Reader) error {
		dockerfile = dockerfile || (name == "Dockerfile" && h.Typeflag == tar.TypeReg)
		manifest = manifest || (name == "manifest.json" && h.Typeflag == tar.TypeReg)
		_, err := io.Copy(io.Discard, r) // counts the content against the limit
		return err
	})
	switch {
	case err != nil:
		return "", err
	case dockerfile:
		return KindContext, nil
	case manifest:
		return KindImage, nil
	}
	return "", unsafeArchive{"the archive has neither a Dockerfile nor a manifest.json at its root"}
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
