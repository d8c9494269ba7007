package runtimeapi

import (
	"bytes"
	"encoding/base64"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestBase64ReaderMatchesTheEncoderAtEverySize(t *testing.T) {
	rng := rand.NewChaCha8([32]byte{3})
	for _, n := range []int{0, 1, 2, 3, 4, 48<<10 - 1, 48 << 10, 48<<10 + 1, 3*48<<10 + 2} {
		data := make([]byte, n)
		rng.Read(data)
		got, err := io.ReadAll(&base64Reader{r: bytes.NewReader(data)})
		if err != nil || string(got) != base64.StdEncoding.EncodeToString(data) {
			t.Fatalf("size %d: %d bytes, %v", n, len(got), err)
		}
	}
}

func TestBodyLengthIsExact(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "a.tar.gz")
	for _, size := range []int{0, 1, 100, 65537} {
		os.WriteFile(archive, bytes.Repeat([]byte{7}, size), 0o644)
		for _, f := range []Format{Multipart, JSON, RawImage} {
			b, _, err := newBody(archive, f, "img:1", []string{"img:latest"})
			if err != nil {
				t.Fatal(err)
			}
			all, _ := io.ReadAll(b)
			b.Close()
			if int64(len(all)) != b.length {
				t.Fatalf("%s, %d bytes: body %d, Content-Length %d", f, size, len(all), b.length)
			}
		}
	}
}
