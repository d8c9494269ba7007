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
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// upload is what POST /build carried, with the archive already on disk.
type upload struct {
	TargetImage string
	Tags        []string
	Target      string // optional build stage (an extension: the hosted API ignores it)
	Size        int64  // bytes of the archive as stored
}

// errTooLarge is an archive beyond the size limit.
var errTooLarge = errors.New("the upload is larger than the server accepts")

// badRequest is an upload that does not follow the protocol.
type badRequest struct{ msg string }

func (b badRequest) Error() string { return b.msg }

// receive reads the body of POST /build in any form of PROTOCOL.md, streaming the archive into
// dst (decoding base64 when it is text) and never holding it in memory.
func receive(r *http.Request, dst io.Writer, limit int64) (upload, error) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return upload{}, badRequest{"Content-Type must be multipart/form-data or application/json"}
	}
	out := &limitedWriter{w: dst, left: limit}
	var u upload
	switch mediaType {
	case "multipart/form-data":
		u, err = receiveMultipart(r, out)
	case "application/json":
		u, err = receiveJSON(r.Body, out)
	default:
		return upload{}, badRequest{"Content-Type must be multipart/form-data or application/json, not " + mediaType}
	}
	if out.exceeded {
		return upload{}, errTooLarge
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return upload{}, errTooLarge
		}
		return upload{}, err
	}
	u.Size = limit - out.left
	if u.Size == 0 {
		return upload{}, badRequest{"the upload has no context archive"}
	}
	if strings.TrimSpace(u.TargetImage) == "" {
		return upload{}, badRequest{"target_image is required"}
	}
	return u, nil
}

func receiveMultipart(r *http.Request, archive io.Writer) (upload, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return upload{}, badRequest{"reading the form: " + err.Error()}
	}
	var u upload
	numbered := map[int]string{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return upload{}, fmt.Errorf("reading the form: %w", err)
		}
		name := part.FormName()
		if name == "context" {
			if err := copyArchive(archive, part); err != nil {
				return upload{}, err
			}
			continue
		}
		value, err := io.ReadAll(io.LimitReader(part, 64<<10))
		if err != nil {
			return upload{}, fmt.Errorf("reading the form: %w", err)
		}
		v := strings.TrimSpace(string(value))
		switch {
		case name == "target_image":
			u.TargetImage = v
		case name == "target":
			u.Target = v
		case name == "tags" || name == "tags[]":
			u.Tags = append(u.Tags, v)
		case strings.HasPrefix(name, "tags_"):
			if n, err := strconv.Atoi(strings.TrimPrefix(name, "tags_")); err == nil {
				numbered[n] = v
			}
		}
	}
	keys := make([]int, 0, len(numbered))
	for k := range numbered {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		u.Tags = append(u.Tags, numbered[k])
	}
	return u, nil
}

// copyArchive copies the archive part: raw gzip bytes as they are, anything else as base64 text.
func copyArchive(dst io.Writer, part io.Reader) error {
	br := bufio.NewReader(part)
	magic, _ := br.Peek(2)
	var src io.Reader = br
	if !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		src = base64.NewDecoder(base64.StdEncoding, br) // skips line breaks
	}
	if _, err := io.Copy(dst, src); err != nil {
		var cie base64.CorruptInputError
		if errors.As(err, &cie) {
			return badRequest{"the context is neither gzip bytes nor base64 text: " + err.Error()}
		}
		return err
	}
	return nil
}

// receiveJSON streams {"context": "<base64>", "target_image": "...", "tags": [...]} with the
// context decoded to archive as it is read; the other members are small and decoded whole.
func receiveJSON(body io.Reader, archive io.Writer) (upload, error) {
	r := bufio.NewReader(body)
	var u upload
	if err := expect(r, '{'); err != nil {
		return u, err
	}
	for first := true; ; first = false {
		c, err := next(r)
		if err != nil {
			return u, err
		}
		if c == '}' {
			return u, nil
		}
		if !first {
			if c != ',' {
				return u, badRequest{"malformed JSON body: expected ','"}
			}
			if c, err = next(r); err != nil {
				return u, err
			}
		}
		if c != '"' {
			return u, badRequest{"malformed JSON body: expected a member name"}
		}
		r.UnreadByte()
		var key string
		if err := decodeValue(r, &key); err != nil {
			return u, err
		}
		if err := expect(r, ':'); err != nil {
			return u, err
		}
		switch key {
		case "context":
			if err := expect(r, '"'); err != nil {
				return u, err
			}
			if err := copyArchive(archive, &jsonStringReader{r: r}); err != nil {
				return u, err
			}
		case "target_image":
			err = decodeValue(r, &u.TargetImage)
		case "target":
			err = decodeValue(r, &u.Target)
		case "tags":
			err = decodeValue(r, &u.Tags)
		default:
			var skip json.RawMessage
			err = decodeValue(r, &skip)
		}
		if err != nil {
			return u, err
		}
	}
}

// next returns the next byte that is not JSON white space.
func next(r *bufio.Reader) (byte, error) {
	for {
		c, err := r.ReadByte()
		if err != nil {
			return 0, badRequest{"malformed JSON body: it ends early"}
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, nil
		}
	}
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

// decodeValue decodes one small JSON value from r, leaving what follows unread.
func decodeValue(r *bufio.Reader, v any) error {
	raw, err := scanValue(r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return badRequest{"malformed JSON body: " + err.Error()}
	}
	return nil
}

// scanValue reads one JSON value of at most 1 MiB: a string, a number, a literal, or a
// balanced array or object.
func scanValue(r *bufio.Reader) ([]byte, error) {
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
		for {
			b, err := r.Peek(1)
			if err != nil || bytes.ContainsAny(b, ",}] \t\r\n") {
				return buf, nil
			}
			r.ReadByte()
			buf = append(buf, b[0])
		}
	}
	for len(buf) < 1<<20 {
		b, err := r.ReadByte()
		if err != nil {
			return nil, badRequest{"malformed JSON body: it ends early"}
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
	return nil, badRequest{"malformed JSON body: a member is too large"}
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
			return n, badRequest{"malformed JSON body: the context string is not closed"}
		}
		switch c {
		case '"':
			j.done = true
		case '\\':
			e, err := j.r.ReadByte()
			if err != nil {
				return n, badRequest{"malformed JSON body: the context string is not closed"}
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

// limitedWriter refuses to write more than left bytes.
type limitedWriter struct {
	w        io.Writer
	left     int64
	exceeded bool
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		l.exceeded = true
		return 0, errTooLarge
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}
