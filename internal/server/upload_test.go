package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

// fuzzLimit is the archive limit of the fuzz tests: small, so that the limit is met often.
const fuzzLimit = 1 << 12

// checkUpload asserts what holds of any upload receive accepted: the archive within its limit,
// every field within its cap.
func checkUpload(t *testing.T, u upload, archive []byte) {
	t.Helper()
	if len(archive) > fuzzLimit || u.Size != int64(len(archive)) {
		t.Fatalf("archive of %d bytes (Size %d), limit %d", len(archive), u.Size, fuzzLimit)
	}
	if len(u.TargetImage) > maxFieldBytes || len(u.Target) > maxFieldBytes || len(u.Tags) > maxTags {
		t.Fatalf("fields beyond their caps: %d, %d bytes, %d tags", len(u.TargetImage), len(u.Target), len(u.Tags))
	}
	for _, tag := range u.Tags {
		if len(tag) > maxFieldBytes {
			t.Fatalf("a tag of %d bytes", len(tag))
		}
	}
}

func FuzzReceiveJSON(f *testing.F) {
	ctx := base64.StdEncoding.EncodeToString([]byte("\x1f\x8b\x08\x00gzip, as far as the server reads it"))
	for _, seed := range []string{
		`{"context":"` + ctx + `","target_image":"localhost/runtime/app:1","tags":["latest","v2"]}`,
		`{"target_image":"a/b:1","tags":[],"target":"binary","context":"` + ctx + `"}`,
		` { "context" : "` + ctx[:8] + `\n` + ctx[8:] + `\/" , "target_image" : "a\u002fb" } `,
		`{"context":"` + ctx + `","target_image":"a/b:1","tags":null}`,
		`{"context":"` + ctx + `","target_image":123}`,
		`{"context":"` + ctx + `","target_image":"a/b:1","junk":{"deep":[1,2,{"x":"}"}]}}`,
		`{"context":"` + ctx + `","context":"` + ctx + `","target_image":"a/b:1"}`,
		`{"context":"` + ctx + `","target_image":"a/b:1","target_image":"c/d:2"}`,
		`{"context":"` + ctx + `","target_image":` + strings.Repeat("9", 100) + `}`,
		`{"context":"` + ctx + `","tags":[tru` + strings.Repeat("e", 50) + `]}`,
		`{"context":"` + ctx + `","tags":` + strings.Repeat("[", 200) + `}`,
		`{"context":"` + ctx + `\u0041","target_image":"a/b:1"}`,
		`{"context":"not base64!","target_image":"a/b:1"}`,
		`{"context":"` + ctx,
		`{` + strings.Repeat(" ", 300) + `}`,
		`[]`, `{}`, `{"`, `{"tags":["\"]"]}`, `{"target_image":"\ud800"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var archive bytes.Buffer
		budget := &formBudget{r: bytes.NewReader(body), left: maxFormBytes, archiveLimit: fuzzLimit}
		u, err := receiveJSON(budget, &archive, &fields{})
		if err != nil {
			var br badRequest
			if !errors.As(err, &br) && !errors.Is(err, errTooLarge) && !errors.Is(err, errFormTooLarge) {
				t.Fatalf("an error that is neither 422 nor 413: %v", err)
			}
			return
		}
		u.Size = budget.archiveSize
		checkUpload(t, u, archive.Bytes())
		// What encoding/json reads of the same body agrees, wherever the body is plain JSON.
		var want struct {
			Context     *string  `json:"context"`
			TargetImage string   `json:"target_image"`
			Target      string   `json:"target"`
			Tags        []string `json:"tags"`
		}
		end := bytes.LastIndexByte(body, '}')
		if end < 0 || !json.Valid(body[:end+1]) || json.Unmarshal(body[:end+1], &want) != nil {
			return
		}
		if want.TargetImage != "" && strings.TrimSpace(want.TargetImage) != u.TargetImage || strings.TrimSpace(want.Target) != u.Target {
			t.Fatalf("target_image %q target %q, encoding/json reads %q %q", u.TargetImage, u.Target, want.TargetImage, want.Target)
		}
		if len(want.Tags) != len(u.Tags) {
			t.Fatalf("tags %q, encoding/json reads %q", u.Tags, want.Tags)
		}
		if want.Context != nil && !strings.Contains(*want.Context, `\`) {
			if decoded, err := base64.StdEncoding.DecodeString(*want.Context); err == nil && !bytes.Equal(decoded, archive.Bytes()) {
				t.Fatalf("archive %q, the context decodes to %q", archive.Bytes(), decoded)
			}
		}
	})
}

// form is a multipart body of the fields in order (name, value, ...) with the archive last.
func form(archive string, fields ...string) (string, []byte) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.SetBoundary("fuzzboundary")
	for i := 0; i+1 < len(fields); i += 2 {
		mw.WriteField(fields[i], fields[i+1])
	}
	if archive != "" {
		part, _ := mw.CreateFormFile("context", "context.tar.gz")
		part.Write([]byte(archive))
	}
	mw.Close()
	return mw.Boundary(), buf.Bytes()
}

func FuzzReceiveMultipart(f *testing.F) {
	gz := "\x1f\x8b\x08\x00raw gzip bytes"
	b64 := base64.StdEncoding.EncodeToString([]byte(gz))
	seeds := [][]string{
		{b64, "target_image", "localhost/runtime/app:1", "tags", "latest", "tags", "v2"},
		{gz, "target_image", "a/b:1", "tags_1", "second", "tags_0", "first"},
		{b64[:6] + "\r\n" + b64[6:], "target_image", "a/b:1", "target", "binary", "tags[]", "x"},
		{b64, "target_image", "a/b:1", "junk", "x"},
		{b64, "target_image", "a/b:1", "target_image", "c/d:2"},
		{b64, "target_image", "a/b:1", "tags_x", "y"},
		{b64, "target_image", strings.Repeat("a", maxFieldBytes+1)},
		{"not base64 at all", "target_image", "a/b:1"},
		{"", "target_image", "a/b:1"},
	}
	for _, s := range seeds {
		_, body := form(s[0], s[1:]...)
		f.Add(body)
	}
	f.Add([]byte("--fuzzboundary\r\nContent-Disposition: form-data; name=\"context\"\r\n\r\n" + b64 + "\r\n--fuzzboundary\r\nContent-Disposition: form-data; name=\"context\"\r\n\r\n" + b64 + "\r\n--fuzzboundary--\r\n"))
	f.Add([]byte(strings.Repeat("\r\n", 100) + "--fuzzboundary--\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		var archive bytes.Buffer
		budget := &formBudget{r: bytes.NewReader(body), left: maxFormBytes, archiveLimit: fuzzLimit}
		u, err := receiveMultipart(budget, "fuzzboundary", &archive, &fields{})
		if err != nil {
			return // any error is an answer; the properties below are of what is accepted
		}
		u.Size = budget.archiveSize
		checkUpload(t, u, archive.Bytes())
		// The standard library reads the same fields from the same body.
		req, _ := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary=fuzzboundary")
		if req.ParseMultipartForm(1<<20) != nil {
			return
		}
		if got := req.MultipartForm.Value["target_image"]; len(got) == 1 && strings.TrimSpace(got[0]) != u.TargetImage {
			t.Fatalf("target_image %q, mime/multipart reads %q", u.TargetImage, got[0])
		}
	})
}
