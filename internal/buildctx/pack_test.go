package buildctx

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/gittest"
	"github.com/runtimebuild/runtimebuild/internal/result"
)

var epoch = time.Unix(gittest.CommitTime, 0).UTC()

type member struct {
	hdr     *tar.Header
	content string
}

// readArchive lists a tar.gz with the gzip header, for assertions.
func readArchive(t *testing.T, data []byte) (gzip.Header, []member) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out []member
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, member{hdr, string(b)})
	}
	return zr.Header, out
}

func packDir(t *testing.T, root string, paths []string) ([]byte, []string) {
	t.Helper()
	entries, warnings, err := Scan(root, paths)
	if err != nil {
		t.Fatal(err)
	}
	return packEntries(t, entries), warnings
}

func packEntries(t *testing.T, entries []Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := pack(context.Background(), &buf, Complete(entries), epoch, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPackNormalisesEveryHeader(t *testing.T) {
	root := t.TempDir()
	gittest.Write(t, root, map[string]string{"bin/tool": "#!/bin/sh\n", "data/x.txt": "x", "a.txt": "a"})
	os.Chmod(filepath.Join(root, "a.txt"), 0o600)
	os.Chtimes(filepath.Join(root, "a.txt"), time.Now(), time.Now())
	data, _ := packDir(t, root, []string{"a.txt", "bin/tool", "data/x.txt"})
	gz, members := readArchive(t, data)
	if gz.Name != "" || !gz.ModTime.IsZero() {
		t.Errorf("gzip header name %q time %v, want neither", gz.Name, gz.ModTime)
	}
	var names []string
	for _, m := range members {
		h := m.hdr
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(epoch) {
			t.Errorf("%s: uid %d gid %d uname %q gname %q mtime %v", h.Name, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime)
		}
		wantMode := int64(0o644)
		if h.Typeflag == tar.TypeDir || h.Name == "bin/tool" {
			wantMode = 0o755
		}
		if h.Mode != wantMode {
			t.Errorf("%s: mode %o, want %o", h.Name, h.Mode, wantMode)
		}
	}
	if want := []string{"a.txt", "bin/", "bin/tool", "data/", "data/x.txt"}; !slices.Equal(names, want) {
		t.Fatalf("names %q, want %q", names, want)
	}
}

func TestPackRoundTripsLongAndNonASCIINames(t *testing.T) {
	root := t.TempDir()
	long := strings.Repeat("d", 90) + "/" + strings.Repeat("f", 110) // 201 characters: beyond USTAR's 100+155 split
	unicode := "données/日本語 ファイル ✓.txt"
	gittest.Write(t, root, map[string]string{long: "long", unicode: "unicode"})
	data, _ := packDir(t, root, []string{long, unicode})
	_, members := readArchive(t, data)
	got := map[string]string{}
	for _, m := range members {
		got[m.hdr.Name] = m.content
	}
	if got[long] != "long" || got[unicode] != "unicode" {
		t.Fatalf("members %q", got)
	}
	if len(long) < 200 {
		t.Fatalf("test name is only %d characters", len(long))
	}
}

func TestSymlinksAreStoredAsLinksAndOutsideOnesWarned(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(outside, []byte("outside content"), 0o644)
	gittest.Write(t, root, map[string]string{
		"real/file.txt": "inside",
		"in":            "link:real/file.txt",
		"real/up":       "link:../real/file.txt",
		"out-abs":       "link:" + outside,
		"out-rel":       "link:../../etc/passwd",
	})
	data, warnings := packDir(t, root, []string{"in", "out-abs", "out-rel", "real/file.txt", "real/up"})
	_, members := readArchive(t, data)
	links := map[string]string{}
	for _, m := range members {
		if m.hdr.Typeflag == tar.TypeSymlink {
			links[m.hdr.Name] = m.hdr.Linkname
			if m.content != "" {
				t.Errorf("%s: a link with content %q: it was followed", m.hdr.Name, m.content)
			}
		}
	}
	want := map[string]string{"in": "real/file.txt", "real/up": "../real/file.txt", "out-abs": outside, "out-rel": "../../etc/passwd"}
	for k, v := range want {
		if links[k] != v {
			t.Errorf("link %s -> %q, want %q", k, links[k], v)
		}
	}
	if len(warnings) != 2 || !strings.Contains(strings.Join(warnings, "\n"), "out-abs") || !strings.Contains(strings.Join(warnings, "\n"), "out-rel") {
		t.Fatalf("warnings %q, want one for each outside link", warnings)
	}
}

func TestScanSkipsDeletedFilesAndWarnsOnDirectories(t *testing.T) {
	root := t.TempDir()
	gittest.Write(t, root, map[string]string{"kept.txt": "k", "submodule/x": "x"})
	entries, warnings, err := Scan(root, []string{"gone.txt", "kept.txt", "submodule"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name != "kept.txt" || len(warnings) != 1 || !strings.Contains(warnings[0], "submodule") {
		t.Fatalf("entries %v warnings %q", entries, warnings)
	}
}

func TestWriteLeavesNothingWhenCancelled(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	gittest.Write(t, root, map[string]string{"big.bin": strings.Repeat("x", 1<<20)})
	entries, _, _ := Scan(root, []string{"big.bin"})
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Write(ctx, out, "a.tar.gz", entries, epoch, cancelOnFirstByte(cancel))
	if err == nil {
		t.Fatal("Write succeeded after cancellation")
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

func TestWriteFailsWhenAFileShrinks(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	gittest.Write(t, root, map[string]string{"f": "0123456789"})
	entries, _, _ := Scan(root, []string{"f"})
	os.WriteFile(filepath.Join(root, "f"), []byte("01"), 0o644)
	if _, err := Write(context.Background(), out, "a.tar.gz", entries, epoch, nil); err == nil || !strings.Contains(err.Error(), "shrank") {
		t.Fatalf("err = %v", err)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// cancelOnFirstByte is a Progress that cancels the packing as soon as content flows.
type cancelOnFirstByte func()

func (c cancelOnFirstByte) Add(int64) { c() }
func (c cancelOnFirstByte) Item()     {}

func TestWriteWarnsWhenAFileGrows(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	gittest.Write(t, root, map[string]string{"log.txt": "0123456789", "same.txt": "s"})
	entries, _, _ := Scan(root, []string{"log.txt", "same.txt"})
	os.WriteFile(filepath.Join(root, "log.txt"), []byte("0123456789 and more"), 0o644)
	a, err := Write(context.Background(), out, "a.tar.gz", entries, epoch, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Warnings) != 1 || !strings.Contains(a.Warnings[0], "log.txt") || !strings.Contains(a.Warnings[0], "10 bytes") {
		t.Fatalf("warnings %q, want one naming log.txt", a.Warnings)
	}
	data, _ := os.ReadFile(a.Path)
	if _, members := readArchive(t, data); members[0].content != "0123456789" {
		t.Fatalf("packed %q", members[0].content)
	}
}

// CLEAN_OUTPUT of a second run into the same OUTPUT_DIR while this one packs (issue 11, 9).
func TestCleaningByAnotherRunLeavesTheArchiveBeingWritten(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	gittest.Write(t, root, map[string]string{"big.bin": strings.Repeat("x", 1<<20)})
	entries, _, _ := Scan(root, []string{"big.bin"})
	var removed []string
	var cleanErr error
	var once sync.Once
	clean := onFirstByte(func() { once.Do(func() { removed, cleanErr = result.Clean(out) }) })
	a, err := Write(context.Background(), out, "a.tar.gz", entries, epoch, clean)
	if err != nil || cleanErr != nil {
		t.Fatalf("write: %v; clean: %v (removed %q)", err, cleanErr, removed)
	}
	if len(removed) != 0 {
		t.Fatalf("the other run removed %q", removed)
	}
	if _, err := os.Stat(a.Path); err != nil {
		t.Fatal(err)
	}
}

// onFirstByte is a Progress that calls its function as content flows.
type onFirstByte func()

func (o onFirstByte) Add(int64) {
	if o != nil {
		o()
	}
}
func (onFirstByte) Item() {}
