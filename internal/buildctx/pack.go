package buildctx

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/pgzip"

	"github.com/runtimebuild/runtimebuild/internal/outputdir"
)

// Archive describes a written archive.
type Archive struct {
	Path     string
	Files    int   // entries that are files or links
	BytesIn  int64 // content bytes packed
	BytesOut int64 // size of the tar.gz
	SHA256   string
	Warnings []string // files that changed while they were packed
}

// Write packs entries into dir/name atomically: the archive is written to a temporary file
// in dir and renamed at the end, so a failure, a cancellation or a secret found in the content
// leaves nothing behind.
func Write(ctx context.Context, dir, name string, entries []Entry, mtime time.Time, progress Progress) (Archive, error) {
	tmp, err := outputdir.CreateTemp(dir)
	if err != nil {
		return Archive{}, fmt.Errorf("creating the archive in %s: %w", dir, err)
	}
	defer tmp.Discard()
	hash := sha256.New()
	counted := &countingWriter{w: io.MultiWriter(tmp, hash)}
	a, err := pack(ctx, counted, entries, mtime, progress)
	if err != nil {
		return Archive{}, err
	}
	if err := tmp.Commit(name); err != nil {
		return Archive{}, err
	}
	a.Path = filepath.Join(dir, name)
	a.BytesOut = counted.n
	a.SHA256 = hex.EncodeToString(hash.Sum(nil))
	return a, nil
}

// Progress hears how packing goes (a progress.Meter is one).
type Progress interface {
	Add(n int64) // content bytes read
	Item()       // one more file or link written (not directories)
}

// Totals are the content bytes and the files (and links) of the entries, for a Progress.
func Totals(entries []Entry) (bytes int64, files int) {
	for _, e := range entries {
		switch {
		case e.Data != nil:
			bytes += int64(len(e.Data))
		case e.Type == tar.TypeReg:
			bytes += e.Size
		}
		if e.Type != tar.TypeDir {
			files++
		}
	}
	return bytes, files
}

// compressionLevel 7 keeps archives within about 1% of gzip -6 (git archive) on source text;
// klauspost's level 6 is 3% larger there, its 8 and 9 markedly slower.
const compressionLevel = 7

// pack writes entries as a gzip-compressed PAX tar to w. Every header is normalised (owner 0,
// no owner names, mtime fixed, modes from the entry) and the gzip header carries no name or
// time, so the same entries always give the same bytes. Content is streamed file by file and
// scanned for secrets on the way (unless the entry allows them): a finding makes a
// *SecretsError once every file has been seen, so that it names them all.
func pack(ctx context.Context, w io.Writer, entries []Entry, mtime time.Time, progress Progress) (Archive, error) {
	gz, err := pgzip.NewWriterLevel(w, compressionLevel)
	if err != nil {
		return Archive{}, err
	}
	// pgzip stores uint32(ModTime.Unix()) even for a zero time; the epoch stores 0, "no time".
	gz.Header.ModTime = time.Unix(0, 0)
	tw := tar.NewWriter(gz)
	var a Archive
	scan := &contentScanner{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return Archive{}, err
		}
		if len(scan.findings) > 0 { // the archive is lost: only look on, to name every secret at once
			if e.Type == tar.TypeReg && e.Data == nil && !e.AllowSecrets {
				if _, _, err := copyContent(ctx, io.Discard, e, e.Size, nil, scan); err != nil {
					return Archive{}, fmt.Errorf("packing %s: %w", e.Name, err)
				}
			}
			continue
		}
		hdr := &tar.Header{
			Typeflag: e.Type,
			Name:     e.Name,
			Linkname: e.Linkname,
			Mode:     e.Mode,
			ModTime:  mtime,
			Format:   tar.FormatPAX,
		}
		switch e.Type {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeReg:
			hdr.Size = e.Size
			if e.Data != nil {
				hdr.Size = int64(len(e.Data))
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return Archive{}, fmt.Errorf("packing %s: %w", e.Name, err)
		}
		if e.Type != tar.TypeDir {
			a.Files++
		}
		if e.Type == tar.TypeReg {
			n, grew, err := copyContent(ctx, tw, e, hdr.Size, progress, scan)
			if err != nil {
				return Archive{}, fmt.Errorf("packing %s: %w", e.Name, err)
			}
			if grew {
				a.Warnings = append(a.Warnings, fmt.Sprintf("%s grew while it was packed: only its first %d bytes, its size when the files were listed, are in the archive", e.Name, hdr.Size))
			}
			a.BytesIn += n
		}
		if progress != nil && e.Type != tar.TypeDir {
			progress.Item()
		}
	}
	if len(scan.findings) > 0 {
		return Archive{}, &SecretsError{Findings: scan.findings}
	}
	if err := tw.Close(); err != nil {
		return Archive{}, err
	}
	if err := gz.Close(); err != nil {
		return Archive{}, err
	}
	return a, nil
}

// copyContent streams the content of a regular entry, exactly size bytes, through the secrets
// scan to w. It reports whether the file grew past size since it was listed.
func copyContent(ctx context.Context, w io.Writer, e Entry, size int64, progress Progress, scan *contentScanner) (n int64, grew bool, err error) {
	var r io.Reader
	var f *os.File
	if e.Data != nil {
		r = bytes.NewReader(e.Data)
	} else {
		if f, err = openRegular(e.Source); err != nil {
			return 0, false, err
		}
		defer f.Close()
		r = f
	}
	cr := &ctxReader{ctx: ctx, r: r, progress: progress}
	if e.Data == nil && !e.AllowSecrets {
		n, err = scan.copyFile(e.Name, w, cr, size)
	} else if n, err = io.CopyN(w, cr, size); err == io.EOF {
		err = fmt.Errorf("the file shrank while it was being packed (%d of %d bytes)", n, size)
	}
	if err != nil || f == nil {
		return n, false, err
	}
	var one [1]byte
	m, _ := f.Read(one[:])
	return n, m > 0, nil
}

// openRegular opens a file to pack, refusing anything that is no longer a regular file (a FIFO,
// a device, a link or a directory put in its place since the files were listed) without
// blocking on it.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() { // O_NOFOLLOW met a link
			return nil, &NotRegularError{Path: path, Mode: fi.Mode()}
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	return f, nil
}

// NotRegularError is a file that became something else (a FIFO, a device, a directory) after
// the files were listed; packing refuses it rather than read or wait on it.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("it became %s after the files were listed: refusing to read it (make it a regular file again, or exclude it)", describeMode(e.Mode))
}

func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return m.Type().String()
}

// ctxReader stops a long copy when the context ends and reports progress.
type ctxReader struct {
	ctx      context.Context
	r        io.Reader
	progress Progress
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if n > 0 && c.progress != nil {
		c.progress.Add(int64(n))
	}
	return n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
