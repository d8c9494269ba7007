package buildctx

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goSources reads about size bytes of Go's own .go files.
func goSources(b testing.TB, size int) [][]byte {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Fatal(err)
	}
	var files [][]byte
	total := 0
	filepath.WalkDir(filepath.Join(strings.TrimSpace(string(out)), "src"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || total >= size || d.IsDir() || !strings.HasSuffix(p, ".go") {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil && len(data) <= 64<<10 {
			files = append(files, data)
			total += len(data)
		}
		return nil
	})
	return files
}

// BenchmarkContentScan measures the secrets scan alone over 40 MB of source text, read as
// pack reads it: go test ./internal/buildctx -run '^$' -bench ContentScan
func BenchmarkContentScan(b *testing.B) {
	files := goSources(b, 40<<20)
	var total int64
	for _, f := range files {
		total += int64(len(f))
	}
	b.SetBytes(total)
	s := &contentScanner{}
	for b.Loop() {
		for _, f := range files {
			if _, err := s.copyFile("f.go", io.Discard, bytes.NewReader(f), int64(len(f))); err != nil { // source, as named in a checkout
				b.Fatal(err)
			}
		}
		s.findings = s.findings[:0]
	}
}
