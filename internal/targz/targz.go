// Package targz reads gzip-compressed tar archives, build contexts and `docker save` images,
// checking every member before a caller sees it: names stay inside the root, links resolve
// inside it as they will on disk, only files, directories and links, and bounded sizes and
// counts. It is the one archive reader of the client (checking what it packed) and of serve
// (hostile uploads).
package targz

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/klauspost/pgzip"
)

// FormatError is a stream that is not a gzip-compressed tar archive.
type FormatError struct{ Err error }

// Error says what the stream is not.
func (e *FormatError) Error() string { return "not a valid tar.gz: " + e.Err.Error() }

// Unwrap is the gzip or tar reader's error.
func (e *FormatError) Unwrap() error { return e.Err }

// UnsafeMemberError is a member refused for what it is: a name outside the root, a link
// leaving it (now or once later links are there), a device or other special file, or more
// links than are checked.
type UnsafeMemberError struct {
	Name   string // the member as the archive names it
	Reason string
}

// Error names the member and says why it is refused.
func (e *UnsafeMemberError) Error() string {
	return fmt.Sprintf("refusing archive member %.4096q: %s", e.Name, e.Reason)
}

// TooLargeError is an archive whose content, decompressed, is more than Limit bytes.
type TooLargeError struct{ Limit int64 }

// Error gives the limit.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the archive unpacks to more than %d bytes", e.Limit)
}

// TooManyMembersError is an archive of more than Max members.
type TooManyMembersError struct{ Max int }

// Error gives the limit.
func (e *TooManyMembersError) Error() string {
	return fmt.Sprintf("the archive has more than %d members", e.Max)
}

// ErrMemberTooLarge says that a member is larger than a caller can hold in memory.
var ErrMemberTooLarge = errors.New("the member is larger than the limit")

// Limits bound what Walk reads; a zero field is no bound.
type Limits struct {
	Bytes   int64 // the content of every member, decompressed
	Members int
}

// Member is one checked member of an archive.
type Member struct {
	Name   string // clean: slash-separated, relative, no "." or ".." element
	Header *tar.Header
}

// MaxName is the longest member or link name accepted, PATH_MAX.
const MaxName = 4096

// Walk reads the gzip tar from r and calls fn for each member, checked before fn sees it
// (the root "./" and PAX global headers are skipped). fn may read the member's content from
// content. It returns the archive's links, to resolve names the content refers to (Links.Resolve).
func Walk(ctx context.Context, r io.Reader, lim Limits, fn func(m Member, content io.Reader) error) (*Links, error) {
	zr, err := pgzip.NewReader(r)
	if err != nil {
		return nil, &FormatError{err}
	}
	defer zr.Close()
	var src io.Reader = zr
	limited := &io.LimitedReader{R: zr, N: lim.Bytes + 1} // one byte more tells "exactly the limit" from "beyond it"
	if lim.Bytes > 0 {
		src = limited
	}
	tooLarge := func() bool { return lim.Bytes > 0 && limited.N == 0 }
	tr := tar.NewReader(src)
	links := newLinks()
	for members := 0; ; members++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		switch {
		case tooLarge():
			return nil, &TooLargeError{lim.Bytes}
		case err == io.EOF:
			return links, links.check()
		case err != nil:
			return nil, &FormatError{err}
		case lim.Members > 0 && members >= lim.Members:
			return nil, &TooManyMembersError{lim.Members}
		case h.Typeflag == tar.TypeXGlobalHeader || (h.Typeflag == tar.TypeDir && path.Clean(h.Name) == "."):
			continue // "./", the root itself, as `tar -C dir .` writes it
		}
		name, err := checkMember(h, links)
		if err != nil {
			return nil, err
		}
		if err := fn(Member{Name: name, Header: h}, content{tr}); err != nil {
			if tooLarge() {
				return nil, &TooLargeError{lim.Bytes}
			}
			return nil, err
		}
	}
}

// checkMember checks h against the members before it (links) and returns its clean name.
func checkMember(h *tar.Header, links *Links) (string, error) {
	name, err := CleanName(h.Name)
	if err != nil {
		return "", &UnsafeMemberError{h.Name, err.Error()}
	}
	if len(name) > MaxName || len(h.Linkname) > MaxName {
		return "", &UnsafeMemberError{name[:min(len(name), 64)] + "…", fmt.Sprintf("a name or link longer than %d bytes", MaxName)}
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeDir:
	case tar.TypeSymlink:
		if path.IsAbs(h.Linkname) || escapesRoot(path.Join(path.Dir(name), h.Linkname)) {
			return "", &UnsafeMemberError{name, fmt.Sprintf("a link to %q, outside the archive", h.Linkname)}
		}
	case tar.TypeLink:
		if _, err := CleanName(h.Linkname); err != nil {
			return "", &UnsafeMemberError{name, fmt.Sprintf("a hard link to %q, outside the archive", h.Linkname)}
		}
		if err := links.Resolve(h.Linkname, false); err != nil { // as written: "r/../x" is not "x" when r is a link
			return "", &UnsafeMemberError{name, fmt.Sprintf("a hard link to %q, which %v", h.Linkname, err)}
		}
	default:
		return "", &UnsafeMemberError{name, fmt.Sprintf("type %q is neither file, directory nor link", h.Typeflag)}
	}
	return name, links.add(name, h)
}

// WalkFile is Walk of the file at file.
func WalkFile(ctx context.Context, file string, lim Limits, fn func(m Member, content io.Reader) error) (*Links, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Walk(ctx, f, lim, fn)
}

// content is a member's content: a stream that breaks off is a *FormatError, so that fn's
// reading errors are typed too.
type content struct{ tr *tar.Reader }

func (c content) Read(p []byte) (int, error) {
	n, err := c.tr.Read(p)
	if err != nil && err != io.EOF {
		err = &FormatError{err}
	}
	return n, err
}

// ReadAtMost reads r whole if it holds at most max bytes; more is ErrMemberTooLarge.
func ReadAtMost(r io.Reader, max int64) ([]byte, error) {
	var b bytes.Buffer
	n, err := io.Copy(&b, io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, fmt.Errorf("%w (%d bytes)", ErrMemberTooLarge, max)
	}
	return b.Bytes(), nil
}

// CleanName turns a path from git, a directory walk or an archive into the form archive
// members take: slash-separated, relative, clean, with no "." or ".." element. Every other byte
// is part of a name, as on Linux and macOS and in tar: a backslash or a colon ("a:b.txt",
// "::error::x", "back\slash.txt") is a character, not a separator or a drive, and a name need
// not be UTF-8 (tar stores bytes). It refuses what cannot be stored safely (a NUL, an absolute
// path, a path leaving the root) rather than guessing.
func CleanName(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("empty path")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("path %q holds a NUL byte", p)
	}
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q is absolute", p)
	}
	clean := path.Clean(p)
	if clean == "." {
		return "", fmt.Errorf("path %q names the root", p)
	}
	if escapesRoot(clean) {
		return "", fmt.Errorf("path %q leaves the root", p)
	}
	return clean, nil
}

func escapesRoot(p string) bool {
	p = path.Clean(p)
	return p == ".." || strings.HasPrefix(p, "../")
}
