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

	"github.com/runtimebuild/runtimebuild/internal/targz"
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

// maxMembers bounds the files, directories and links of an upload: a builder lists them all in memory.
const maxMembers = 1 << 19

// walk reads the upload at file with the one archive walker (targz), with the server's
// limits: at most limit bytes once decompressed and maxCount members. What the walker refuses
// is an unsafeArchive (422) or errTooLarge (413).
func walk(ctx context.Context, file string, limit int64, maxCount int, fn func(m targz.Member, r io.Reader) error) (*targz.Links, error) {
	links, err := targz.WalkFile(ctx, file, targz.Limits{Bytes: limit, Members: maxCount}, fn)
	var (
		format   *targz.FormatError
		member   *targz.UnsafeMemberError
		tooMany  *targz.TooManyMembersError
		tooLarge *targz.TooLargeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return nil, errTooLarge
	case errors.As(err, &format):
		return nil, unsafeArchive{"the context is " + format.Error()}
	case errors.As(err, &member):
		return nil, unsafeArchive{member.Error()}
	case errors.As(err, &tooMany):
		return nil, unsafeArchive{fmt.Sprintf("the archive has more than %d members, more than the server unpacks", tooMany.Max)}
	}
	return links, err
}

// inspect checks the archive and tells what it holds. An image archive's manifest.json may
// name only files inside the archive.
func inspect(ctx context.Context, file string, limit int64) (Kind, error) {
	var dockerfile bool
	var manifest []byte
	links, err := walk(ctx, file, limit, maxMembers, func(m targz.Member, r io.Reader) error {
		dockerfile = dockerfile || (m.Name == "Dockerfile" && m.Header.Typeflag == tar.TypeReg)
		if m.Name == "manifest.json" && m.Header.Typeflag == tar.TypeReg {
			b, err := targz.ReadAtMost(r, targz.MaxManifest)
			if errors.Is(err, targz.ErrMemberTooLarge) {
				return unsafeArchive{fmt.Sprintf("manifest.json is larger than %d KiB", targz.MaxManifest>>10)}
			}
			if err != nil {
				return err
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

// checkManifest refuses a manifest.json naming files outside the archive (the builder would
// look for them there). A manifest that does not parse is left to the builder to report.
func checkManifest(b []byte, links *targz.Links) error {
	manifest, err := targz.ParseManifest(b)
	if err != nil {
		return nil
	}
	for _, f := range manifest.Files() {
		_, err := targz.CleanName(f)
		if err == nil {
			err = links.Resolve(f, true) // as written: "r/../x" is not "x" when r is a link
		}
		if err != nil {
			return unsafeArchive{fmt.Sprintf("manifest.json names %s, outside the archive: %v", quoteName(f), err)}
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
	b, err := targz.ReadAtMost(f, limit)
	if errors.Is(err, targz.ErrMemberTooLarge) {
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
	_, err = walk(ctx, file, limit, maxMembers, func(m targz.Member, r io.Reader) error {
		name, h := m.Name, m.Header
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
	return err
}
