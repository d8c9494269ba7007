package buildctx

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/pgzip"

	"github.com/runtimebuild/runtimebuild/internal/result"
)

// Archive describes a written archive.
type Archive struct {
	Path     string
	Files    int   // entries that are files or links
	BytesIn  int64 // content bytes packed
	BytesOut int64 // size of the tar.gz
	SHA256   string
}

// Write packs entries into dir/name atomically: the archive is written to a temporary file
// in dir and renamed at the end, so a failure or cancellation leaves nothing behind.
func Write(ctx context.Context, dir, name string, entries []Entry, mtime time.Time, progress Progress) (Archive, error) {
	tmp, err := os.CreateTemp(dir, result.TempPattern)
	if err != nil {
		return Archive{}, fmt.Errorf("creating the archive in %s: %w", dir, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	hash := sha256.New()
	counted := &countingWriter{w: io.MultiWriter(tmp, hash)}
	a, err := Pack(ctx, counted, entries, mtime, progress)
	if err != nil {
		return Archive{}, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return Archive{}, err
	}
	if err := tmp.Sync(); err != nil {
		return Archive{}, fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return Archive{}, fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	a.Path = filepath.Join(dir, name)
	if err := os.Rename(tmp.Name(), a.Path); err != nil {
		return Archive{}, fmt.Errorf("renaming the archive to %s: %w", a.Path, err)
	}
	done = true
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

// Pack writes entries as a gzip-compressed PAX tar to w. Every header is normalised (owner 0,
// no owner names, mtime fixed, modes from the entry) and the gzip header carries no name or
// time, so the same entries always give the same bytes. Content is streamed file by file.
func Pack(ctx context.Context, w io.Writer, entries []Entry, mtime time.Time, progress Progress) (Archive, error) {
	gz, err := pgzip.NewWriterLevel(w, compressionLevel)
	if err != nil {
		return Archive{}, err
	}
	// pgzip stores uint32(ModTime.Unix()) even for a zero time; the epoch stores 0, "no time".
	gz.Header.ModTime = time.Unix(0, 0)
	tw := tar.NewWriter(gz)
	var a Archive
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return Archive{}, err
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
			n, err := copyContent(ctx, tw, e, hdr.Size, progress)
			if err != nil {
				return Archive{}, fmt.Errorf("packing %s: %w", e.Name, err)
			}
			a.BytesIn += n
		}
		if progress != nil && e.Type != tar.TypeDir {
			progress.Item()
		}
	}
	if err := tw.Close(); err != nil {
		return Archive{}, err
	}
	if err := gz.Close(); err != nil {
		return Archive{}, err
	}
	return a, nil
}

func copyContent(ctx context.Context, w io.Writer, e Entry, size int64, progress Progress) (int64, error) {
	var r io.Reader
	if e.Data != nil {
		r = bytes.NewReader(e.Data)
	} else {
		f, err := os.Open(e.Source)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		r = f
	}
	n, err := io.CopyN(w, &ctxReader{ctx: ctx, r: r, progress: progress}, size)
	if err == io.EOF {
		return n, fmt.Errorf("the file shrank while it was being packed (%d of %d bytes)", n, size)
	}
	return n, err
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
