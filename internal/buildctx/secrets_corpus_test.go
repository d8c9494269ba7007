package buildctx

import (
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The content rules flag no file of Go's own sources (and, with RUNTIMEBUILD_SCAN_MODCACHE=1,
// of the Go module cache: every module this repository builds with) but those that hold a
// private key: the false-positive corpus of issue 16. Skipped with -short (about 160 MB read).
func TestContentRulesFlagNothingInGoSources(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the corpus is Go's whole source tree")
	}
	dirs := []string{goEnv(t, "GOROOT") + "/src"}
	if os.Getenv("RUNTIMEBUILD_SCAN_MODCACHE") == "1" {
		dirs = append(dirs, goEnv(t, "GOMODCACHE"))
	}
	holdsKey := regexp.MustCompile(`(-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|PuTTY-User-Key-File-|LS0tLS1CRUdJTi)`)
	s := &contentScanner{}
	files, bytes, keys := 0, int64(0), 0
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() && d.Name() == "cache" && filepath.Dir(p) == dir { // the module cache's zips
				if err == nil {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return nil
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return nil
			}
			before := len(s.findings)
			rel, _ := filepath.Rel(dir, p)
			if _, err := s.copyFile(filepath.ToSlash(rel), io.Discard, f, fi.Size()); err != nil {
				t.Errorf("%s: %v", p, err)
			}
			files++
			bytes += fi.Size()
			if len(s.findings) > before {
				data, _ := os.ReadFile(p)
				if holdsKey.Match(data) && !slices.ContainsFunc(s.findings[before:], func(f Finding) bool {
					return !strings.Contains(f.Rule, "private-key") && f.Rule != "service-account-key"
				}) {
					keys++ // a test key of crypto/tls, x509, ssh...: a private key indeed
					return nil
				}
				t.Errorf("%s: flagged %v", p, s.findings[before:])
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d files, %d MB: %d hold a private key and are flagged for it, no other file is flagged", files, bytes>>20, keys)
}

func goEnv(t *testing.T, name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Skipf("go env %s: %v", name, err) // the corpus needs Go's sources
	}
	return strings.TrimSpace(string(out))
}
