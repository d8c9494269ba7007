package runtimeapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"os"
)

// Format is how SubmitBuild sends the archive.
type Format string

// The upload formats of docs/protocol.md.
const (
	// Multipart is the builder client's form: part "context" (context.tar.gz) holding base64 text.
	Multipart Format = "multipart"
	// JSON is {"context": "<base64>", "target_image": ..., "tags": [...]}.
	JSON Format = "json"
	// RawImage is the image uploader's form: part "context" (image.tar.gz, application/gzip), raw bytes.
	RawImage Format = "image"
)

// body is a request body streamed from the archive file: a prefix, the file (raw or as base64)
// and a suffix, with its exact length known before the first byte is sent.
type body struct {
	io.Reader
	file   *os.File
	length int64
}

func (b *body) Close() error { return b.file.Close() }

// newBody opens archive and lays out the request body for format; it returns the body and
// its content type.
func newBody(archive string, format Format, targetImage string, tags []string) (*body, string, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, "", err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, "", err
	}
	prefix, suffix, contentType, err := frame(format, targetImage, tags)
	if err != nil {
		f.Close()
		return nil, "", err
	}
	b := &body{file: f}
	var content io.Reader = f
	contentLen := fi.Size()
	if format != RawImage {
		content = &base64Reader{r: f}
		contentLen = int64(base64.StdEncoding.EncodedLen(int(fi.Size())))
	}
	b.Reader = io.MultiReader(bytes.NewReader(prefix), content, bytes.NewReader(suffix))
	b.length = int64(len(prefix)) + contentLen + int64(len(suffix))
	return b, contentType, nil
}

// frame returns what comes before and after the archive content in the body.
func frame(format Format, targetImage string, tags []string) (prefix, suffix []byte, contentType string, err error) {
	if format == JSON {
		if tags == nil {
			tags = []string{}
		}
		// The context's string streams between prefix and suffix: the prefix opens it, and the
		// suffix closes it and holds the other members, as json.Marshal writes them.
		key, err := json.Marshal(FieldContext)
		if err != nil {
			return nil, nil, "", err
		}
		rest, err := json.Marshal(map[string]any{FieldTargetImage: targetImage, FieldTags: tags})
		if err != nil {
			return nil, nil, "", err
		}
		prefix = append(append([]byte("{"), key...), `:"`...)
		suffix = append([]byte(`",`), rest[1:]...) // rest without its "{"
		return prefix, suffix, "application/json", nil
	}
	var head, tail bytes.Buffer
	out := &switchWriter{w: &head}
	mw := multipart.NewWriter(out)
	if err := mw.WriteField(FieldTargetImage, targetImage); err != nil {
		return nil, nil, "", err
	}
	for _, t := range tags {
		if err := mw.WriteField(FieldTags, t); err != nil {
			return nil, nil, "", err
		}
	}
	h := textproto.MIMEHeader{}
	if format == RawImage {
		h.Set("Content-Disposition", `form-data; name="`+FieldContext+`"; filename="image.tar.gz"`)
		h.Set("Content-Type", "application/gzip")
	} else {
		h.Set("Content-Disposition", `form-data; name="`+FieldContext+`"; filename="context.tar.gz"`)
		h.Set("Content-Type", "application/octet-stream")
	}
	if _, err := mw.CreatePart(h); err != nil {
		return nil, nil, "", err
	}
	out.w = &tail // the part's content streams between head and tail
	if err := mw.Close(); err != nil {
		return nil, nil, "", err
	}
	return head.Bytes(), tail.Bytes(), mw.FormDataContentType(), nil
}

type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

// base64Reader yields the standard base64 text of r, encoding 48 KiB at a time: large reads,
// no goroutine, and nothing held beyond one chunk.
type base64Reader struct {
	r    io.Reader
	in   []byte
	out  []byte
	left []byte // encoded, not yet read
	done bool
}

func (b *base64Reader) Read(p []byte) (int, error) {
	for len(b.left) == 0 {
		if b.done {
			return 0, io.EOF
		}
		if b.in == nil {
			b.in = make([]byte, 48<<10) // a multiple of 3: only the last chunk is padded
			b.out = make([]byte, base64.StdEncoding.EncodedLen(len(b.in)))
		}
		n, err := io.ReadFull(b.r, b.in)
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			b.done = true
		default:
			return 0, fmt.Errorf("reading the archive: %w", err)
		}
		base64.StdEncoding.Encode(b.out, b.in[:n])
		b.left = b.out[:base64.StdEncoding.EncodedLen(n)]
	}
	n := copy(p, b.left)
	b.left = b.left[n:]
	return n, nil
}

// progressReader reports the bytes read so far.
type progressReader struct {
	r      io.Reader
	sent   int64
	total  int64
	report func(sent, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.sent += int64(n)
	if n > 0 {
		p.report(p.sent, p.total)
	}
	return n, err
}
