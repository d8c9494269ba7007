package server

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// upload is what POST /build carried, with the archive already on disk.
type upload struct {
	TargetImage string
	Tags        []string
	Target      string // optional build stage (an extension: the hosted API ignores it)
	Size        int64  // bytes of the archive as stored
}

// Limits of everything in POST /build but the archive: whatever SERVE_MAX_UPLOAD is, the
// fields of one request cost at most about maxFormBytes of memory.
const (
	maxFieldBytes = 4 << 10 // one value: an image reference, a tag, a stage
	maxTags       = 64
	maxFormBytes  = 1 << 20 // all the request body but the archive: part headers, fields, JSON syntax
)

// errTooLarge is an archive beyond the size limit.
var errTooLarge = errors.New("the upload is larger than the server accepts")

// errFormTooLarge is a request whose body beside the archive is beyond maxFormBytes.
var errFormTooLarge = fmt.Errorf("the request's fields beside the context exceed %d KiB", maxFormBytes>>10)

// badRequest is an upload that does not follow the protocol.
type badRequest struct{ msg string }

func (b badRequest) Error() string { return b.msg }

// receive reads the body of POST /build in any form of docs/protocol.md, streaming the archive into
// dst (decoding base64 when it is text) and never holding it in memory.
// check, when not nil, is asked about each field's value as it is read (a refusal ends the read).
func receive(contentType string, r io.Reader, dst io.Writer, limit int64, check func(field, value string) error) (upload, error) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return upload{}, badRequest{"Content-Type must be multipart/form-data or application/json"}
	}
	body := &formBudget{r: r, left: maxFormBytes, archiveLimit: limit}
	f := &fields{check: check}
	var u upload
	switch mediaType {
	case "multipart/form-data":
		u, err = receiveMultipart(body, params["boundary"], dst, f)
	case "application/json":
		u, err = receiveJSON(body, dst, f)
	default:
		return upload{}, badRequest{"Content-Type must be multipart/form-data or application/json, not " + mediaType}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return upload{}, errTooLarge
		}
		return upload{}, err
	}
	u.Size = body.archiveSize
	if u.Size == 0 {
		return upload{}, badRequest{"the upload has no context archive"}
	}
	if strings.TrimSpace(u.TargetImage) == "" {
		return upload{}, badRequest{runtimeapi.FieldTargetImage + " is required"}
	}
	return u, nil
}

// formBudget counts what is read of a request body outside its archive and fails past
// maxFormBytes, so that no field, header or padding can make a request cost memory or time
// beyond that (the archive has its own limit). http.MaxBytesReader (accept) cannot: it bounds
// the whole body, archive included, so up to 4/3 of the archive limit would be left for
// multipart preambles and part headers or JSON whitespace, which the per-field limits never see.
type formBudget struct {
	r            io.Reader
	left         int64
	inArchive    bool
	archiveLimit int64 // bytes of the archive, decoded
	archiveSize  int64 // what archive wrote
}

func (b *formBudget) Read(p []byte) (int, error) {
	if !b.inArchive && b.left < 0 {
		return 0, errFormTooLarge
	}
	n, err := b.r.Read(p)
	if !b.inArchive {
		b.left -= int64(n)
	}
	return n, err
}

// archive streams the archive from src to dst with the budget paused; past archiveLimit bytes
// it is errTooLarge.
func (b *formBudget) archive(dst io.Writer, src io.Reader) error {
	b.inArchive = true
	defer func() { b.inArchive = false }()
	var err error
	b.archiveSize, err = copyArchive(dst, src, b.archiveLimit)
	return err
}

// fields collects the fields beside the archive, refusing what the protocol does not have:
// unknown names, a field given twice, a value over maxFieldBytes, more than maxTags tags.
type fields struct {
	check    func(field, value string) error
	u        upload
	seen     map[string]bool
	numbered map[int]string
}

// The spellings of tags beside runtimeapi.FieldTags that serve reads: tags[] (as some form
// libraries name a list) and tags_0, tags_1, … (numbered).
const (
	tagsList     = runtimeapi.FieldTags + "[]"
	tagsNumbered = runtimeapi.FieldTags + "_"
)

const knownFields = runtimeapi.FieldContext + ", " + runtimeapi.FieldTargetImage + ", " + runtimeapi.FieldTags +
	" (or " + tagsNumbered + "0, " + tagsNumbered + "1, …) and " + runtimeapi.FieldTarget

// admit refuses a field by its name alone, before its value is read: unknown, or given twice.
func (f *fields) admit(name string) error {
	if f.seen == nil {
		f.seen, f.numbered = map[string]bool{}, map[int]string{}
	}
	switch {
	case name == runtimeapi.FieldTargetImage, name == runtimeapi.FieldTarget:
	case name == runtimeapi.FieldTags, name == tagsList:
		return nil // repeated once per tag
	case strings.HasPrefix(name, tagsNumbered):
		n, err := strconv.Atoi(strings.TrimPrefix(name, tagsNumbered))
		if err != nil || n < 0 {
			return unknownField(name)
		}
		if _, dup := f.numbered[n]; dup { // tags_1, then tags_01
			return badRequest{fmt.Sprintf("the field %s is given twice", quoteName(name))}
		}
	default:
		return unknownField(name)
	}
	if f.seen[name] {
		return badRequest{fmt.Sprintf("the field %s is given twice", quoteName(name))}
	}
	f.seen[name] = true
	return nil
}

// set records the value of an admitted field.
func (f *fields) set(name, value string) error {
	if len(value) > maxFieldBytes {
		return badRequest{fmt.Sprintf("the field %s is longer than %d bytes", quoteName(name), maxFieldBytes)}
	}
	v := strings.TrimSpace(value)
	if f.check != nil {
		if err := f.check(name, v); err != nil {
			return err
		}
	}
	switch name {
	case runtimeapi.FieldTargetImage:
		f.u.TargetImage = v
	case runtimeapi.FieldTarget:
		f.u.Target = v
	case runtimeapi.FieldTags, tagsList:
		f.u.Tags = append(f.u.Tags, v)
	default: // tags_<n>, checked by admit
		n, _ := strconv.Atoi(strings.TrimPrefix(name, tagsNumbered))
		f.numbered[n] = v
	}
	if len(f.u.Tags)+len(f.numbered) > maxTags {
		return badRequest{fmt.Sprintf("more than %d tags", maxTags)}
	}
	return nil
}

// result is the upload with numbered tags after the others, in their order.
func (f *fields) result() upload {
	keys := make([]int, 0, len(f.numbered))
	for k := range f.numbered {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		f.u.Tags = append(f.u.Tags, f.numbered[k])
	}
	return f.u
}

func unknownField(name string) error {
	return badRequest{fmt.Sprintf("unknown field %s: POST /build takes %s", quoteName(name), knownFields)}
}

// quoteName quotes a client's field name for a message, cut to 64 bytes.
func quoteName(name string) string {
	if len(name) > 64 {
		name = name[:64] + "…"
	}
	return strconv.Quote(name)
}

func receiveMultipart(body *formBudget, boundary string, archive io.Writer, f *fields) (upload, error) {
	if boundary == "" {
		return upload{}, badRequest{"reading the form: the Content-Type has no boundary"}
	}
	mr := multipart.NewReader(body, boundary)
	gotArchive := false
	for parts := 0; ; parts++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return upload{}, formError(err)
		}
		if parts > maxTags+3 {
			return upload{}, badRequest{fmt.Sprintf("the form has more than %d parts", maxTags+3)}
		}
		name := part.FormName()
		if name == runtimeapi.FieldContext {
			if gotArchive {
				return upload{}, badRequest{"the form has two context parts"}
			}
			gotArchive = true
			if err := body.archive(archive, part); err != nil {
				return upload{}, err
			}
			continue
		}
		if err := f.admit(name); err != nil {
			return upload{}, err
		}
		value, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
		if err != nil {
			return upload{}, formError(err)
		}
		if err := f.set(name, string(value)); err != nil {
			return upload{}, err
		}
	}
	return f.result(), nil
}

// formError wraps an error met while reading the form; the budget's and the body limit's
// errors stay recognisable.
func formError(err error) error {
	if errors.Is(err, errFormTooLarge) {
		return errFormTooLarge
	}
	return fmt.Errorf("reading the form: %w", err)
}

// copyArchive copies the archive part: raw gzip bytes as they are, anything else as base64 text.
// It copies at most limit bytes, decoded, and returns how many; more is errTooLarge.
func copyArchive(dst io.Writer, part io.Reader, limit int64) (int64, error) {
	src := &endOf{r: part}
	br := bufio.NewReader(src)
	var archive io.Reader = br
	if magic, _ := br.Peek(2); !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		archive = base64.NewDecoder(base64.StdEncoding, br) // skips line breaks
	}
	n, err := io.Copy(dst, io.LimitReader(archive, limit+1))
	var cie base64.CorruptInputError
	switch {
	case n > limit:
		return n, errTooLarge
	case errors.As(err, &cie):
		return n, badRequest{"the context is neither gzip bytes nor base64 text: " + err.Error()}
	case errors.Is(err, io.ErrUnexpectedEOF) && src.err == io.EOF: // the text ended, not the body
		return n, badRequest{"the context is neither gzip bytes nor base64 text: it ends inside a group of 4 characters"}
	}
	return n, err
}

// endOf remembers how its reader ended.
type endOf struct {
	r   io.Reader
	err error
}

func (e *endOf) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// receiveJSON streams {"context": "<base64>", "target_image": "...", "tags": [...]} with the
// context decoded to archive as it is read; the other members are small and decoded whole.
func receiveJSON(body *formBudget, archive io.Writer, f *fields) (upload, error) {
	r := bufio.NewReader(body)
	if err := expect(r, '{'); err != nil {
		return upload{}, err
	}
	gotArchive := false
	for first := true; ; first = false {
		c, err := next(r)
		if err != nil {
			return upload{}, err
		}
		if c == '}' {
			return f.result(), nil
		}
		if !first {
			if c != ',' {
				return upload{}, badRequest{"malformed JSON body: expected ','"}
			}
			if c, err = next(r); err != nil {
				return upload{}, err
			}
		}
		if c != '"' {
			return upload{}, badRequest{"malformed JSON body: expected a member name"}
		}
		r.UnreadByte()
		var key string
		if err := decodeValue(r, &key, 256); err != nil {
			return upload{}, err
		}
		if err := expect(r, ':'); err != nil {
			return upload{}, err
		}
		switch key {
		case runtimeapi.FieldContext:
			if gotArchive {
				return upload{}, badRequest{"the JSON body has two context members"}
			}
			gotArchive = true
			if err := expect(r, '"'); err != nil {
				return upload{}, err
			}
			if err := body.archive(archive, &jsonStringReader{r: r}); err != nil {
				return upload{}, err
			}
			continue
		case runtimeapi.FieldTargetImage, runtimeapi.FieldTarget, runtimeapi.FieldTags:
		default:
			return upload{}, unknownField(key) // before its value is read
		}
		if err := f.admit(key); err != nil {
			return upload{}, err
		}
		if key == runtimeapi.FieldTags {
			err = decodeTags(r, f)
		} else {
			var v string
			if err = decodeValue(r, &v, 6*maxFieldBytes); err == nil { // room for \uXXXX escapes
				err = f.set(key, v)
			}
		}
		if err != nil {
			return upload{}, err
		}
	}
}

// decodeTags decodes the tags array, within maxFieldBytes per tag and maxTags tags.
func decodeTags(r *bufio.Reader, f *fields) error {
	var tags []string
	if err := decodeValue(r, &tags, maxFormBytes/2); err != nil {
		return err
	}
	for _, t := range tags {
		if err := f.set(runtimeapi.FieldTags, t); err != nil {
			return err
		}
	}
	return nil
}

// next returns the next byte that is not JSON white space.
func next(r *bufio.Reader) (byte, error) {
	for {
		c, err := r.ReadByte()
		if err != nil {
			return 0, jsonReadError(err)
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, nil
		}
	}
}

// jsonReadError is a malformed body when it ended, else the reader's own error (the body
// limit, the budget, a timeout, a client gone).
func jsonReadError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return badRequest{"malformed JSON body: it ends early"}
	}
	return err
}

func expect(r *bufio.Reader, want byte) error {
	c, err := next(r)
	if err != nil {
		return err
	}
	if c != want {
		return badRequest{fmt.Sprintf("malformed JSON body: expected %q, found %q", want, c)}
	}
	return nil
}

// decodeValue decodes one JSON value of at most max bytes from r, leaving what follows unread.
func decodeValue(r *bufio.Reader, v any, max int) error {
	raw, err := scanValue(r, max)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return badRequest{"malformed JSON body: " + err.Error()}
	}
	return nil
}

// scanValue reads one JSON value of at most max bytes: a string, a number, a literal, or a
// balanced array or object. Nothing of it is kept beyond max.
func scanValue(r *bufio.Reader, max int) ([]byte, error) {
	c, err := next(r)
	if err != nil {
		return nil, err
	}
	buf := []byte{c}
	depth, inString, escaped := 0, c == '"', false
	switch c {
	case '[', '{':
		depth = 1
	}
	if !inString && depth == 0 { // number or literal: up to the next delimiter
		for len(buf) <= max {
			b, err := r.Peek(1)
			if err != nil {
				if errors.Is(err, io.EOF) {
					return buf, nil // the caller's next read says the body ended early
				}
				return nil, err
			}
			if bytes.ContainsAny(b, ",}] \t\r\n") {
				return buf, nil
			}
			r.ReadByte()
			buf = append(buf, b[0])
		}
		return nil, tooLargeMember(max)
	}
	for len(buf) <= max {
		b, err := r.ReadByte()
		if err != nil {
			return nil, jsonReadError(err)
		}
		buf = append(buf, b)
		switch {
		case escaped:
			escaped = false
		case inString && b == '\\':
			escaped = true
		case b == '"':
			inString = !inString
			if !inString && depth == 0 {
				return buf, nil
			}
		case !inString && (b == '[' || b == '{'):
			depth++
		case !inString && (b == ']' || b == '}'):
			depth--
			if depth == 0 {
				return buf, nil
			}
		}
	}
	return nil, tooLargeMember(max)
}

func tooLargeMember(max int) error {
	return badRequest{fmt.Sprintf("malformed JSON body: a member is longer than %d bytes", max)}
}

// jsonStringReader yields the content of a JSON string (after its opening quote) up to the
// closing quote. Base64 text needs no escapes, but "\/" and "\n" are tolerated.
type jsonStringReader struct {
	r    *bufio.Reader
	done bool
}

func (j *jsonStringReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && !j.done {
		c, err := j.r.ReadByte()
		if err != nil {
			return n, unclosed(err)
		}
		switch c {
		case '"':
			j.done = true
		case '\\':
			e, err := j.r.ReadByte()
			if err != nil {
				return n, unclosed(err)
			}
			switch e {
			case '/':
				p[n] = '/'
				n++
			case 'n', 'r':
				// line breaks inside base64 are ignored
			default:
				return n, badRequest{"the context string holds an escape that base64 text never has"}
			}
		default:
			p[n] = c
			n++
		}
	}
	if n == 0 && j.done {
		return 0, io.EOF
	}
	return n, nil
}

// unclosed is a context string that the body's end cut, or the reader's own error.
func unclosed(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return badRequest{"malformed JSON body: the context string is not closed"}
	}
	return err
}
