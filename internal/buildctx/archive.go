package buildctx

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/klauspost/pgzip"
)

// UnsafeArchiveError is an archive refused for what it holds: not gzip or tar, a member
// outside the root, a link leaving it, a device or other special file.
type UnsafeArchiveError struct{ Msg string }

// Error says what was refused.
func (e *UnsafeArchiveError) Error() string { return e.Msg }

// ErrArchiveTooLarge says that an archive unpacks to more than the limit given.
var ErrArchiveTooLarge = errors.New("the archive unpacks to more than the limit")

// ErrMemberTooLarge says that a member is larger than a caller can hold in memory.
var ErrMemberTooLarge = errors.New("the member is larger than the limit")

// Member is one checked member of an archive.
type Member struct {
	Name   string // normalised: slash-separated, relative, clean
	Header *tar.Header
}

// walkArchive reads the gzip tar from r and calls fn for each member, checked before fn sees
// it: names stay inside the root, symbolic and hard links point inside it, only files,
// directories and links (the root "./" and PAX global headers are skipped), and at most limit
// bytes once decompressed (limit <= 0: no limit). fn may read the member's content from content.
// It is the client's one reader of archives (ListArchive and tests use it); the server keeps
// its own, hardened against hostile uploads (server/archive.go).
func walkArchive(ctx context.Context, r io.Reader, limit int64, fn func(m Member, content io.Reader) error) error {
	zr, err := pgzip.NewReader(r)
	if err != nil {
		return &UnsafeArchiveError{"not a gzip archive: " + err.Error()}
	}
	defer zr.Close()
	counted := &limitReader{r: zr, left: limit, limited: limit > 0}
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
			return ErrArchiveTooLarge
		}
		if err != nil {
			return &UnsafeArchiveError{"not a valid tar.gz: " + err.Error()}
		}
		if h.Typeflag == tar.TypeXGlobalHeader || (h.Typeflag == tar.TypeDir && path.Clean(h.Name) == ".") {
			continue // "./", the root itself, as `tar -C dir .` writes it
		}
		name, err := NormalizePath(h.Name)
		if err != nil {
			return &UnsafeArchiveError{"refusing archive member: " + err.Error()}
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeDir:
		case tar.TypeSymlink:
			if escapes(name, h.Linkname) {
				return &UnsafeArchiveError{fmt.Sprintf("refusing archive member %s: a link to %s, outside the archive", name, h.Linkname)}
			}
		case tar.TypeLink:
			if _, err := NormalizePath(h.Linkname); err != nil {
				return &UnsafeArchiveError{fmt.Sprintf("refusing archive member %s: a hard link to %s, outside the archive", name, h.Linkname)}
			}
		default:
			return &UnsafeArchiveError{fmt.Sprintf("refusing archive member %s: type %q is neither file, directory nor link", name, h.Typeflag)}
		}
		if err := fn(Member{Name: name, Header: h}, tr); err != nil {
			if counted.exceeded {
				return ErrArchiveTooLarge
			}
			return err
		}
	}
}

// walkArchiveFile is walkArchive of the file at file.
func walkArchiveFile(ctx context.Context, file string, limit int64, fn func(m Member, content io.Reader) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	return walkArchive(ctx, f, limit, fn)
}

// ArchiveListing is an archive's member names and the content of the files asked for.
type ArchiveListing struct {
	Names []string          // every member, in archive order
	Files map[string][]byte // the regular files asked for that the archive holds
}

// ListArchive lists the archive at file and reads the regular files named in want, each at
// most max bytes: a larger one is ErrMemberTooLarge, never silently cut.
func ListArchive(ctx context.Context, file string, want []string, max int64) (ArchiveListing, error) {
	l := ArchiveListing{Files: map[string][]byte{}}
	err := walkArchiveFile(ctx, file, 0, func(m Member, content io.Reader) error {
		l.Names = append(l.Names, m.Name)
		for _, w := range want {
			if m.Name == w && m.Header.Typeflag == tar.TypeReg {
				var b bytes.Buffer
				n, err := io.Copy(&b, io.LimitReader(content, max+1))
				if err != nil {
					return fmt.Errorf("reading %s: %w", m.Name, err)
				}
				if n > max {
					return fmt.Errorf("%s: %w (%d bytes)", m.Name, ErrMemberTooLarge, max)
				}
				l.Files[m.Name] = b.Bytes()
			}
		}
		return nil
	})
	return l, err
}

// limitReader counts what it reads and fails once more than left bytes came (unlimited when
// limited is false).
type limitReader struct {
	r                 io.Reader
	left              int64
	limited, exceeded bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if !l.limited {
		return l.r.Read(p)
	}
	if l.exceeded {
		return 0, ErrArchiveTooLarge
	}
	n, err := l.r.Read(p)
	if l.left -= int64(n); l.left < 0 {
		l.exceeded = true
		return n, ErrArchiveTooLarge
	}
	return n, err
}
