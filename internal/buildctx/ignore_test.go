package buildctx

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTheDockerfilesOwnIgnoreFileBeatsTheRootOne(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{".dockerignore": "docs\n", "app/docker/Dockerfile": "FROM scratch\n", "app/docker/Dockerfile.dockerignore": "# own\n\nnotes\n"})
	if got := ignoreFileFor(root, "app/docker/Dockerfile"); got != "app/docker/Dockerfile.dockerignore" {
		t.Fatalf("ignore file %q", got)
	}
	f, err := LoadIgnore(root, "app/docker/Dockerfile")
	if err != nil || f.Path != "app/docker/Dockerfile.dockerignore" || !slices.Equal(f.Strings(), []string{"notes"}) || f.Patterns[0].Line != 3 {
		t.Fatalf("%+v, %v", f, err)
	}
	if got := ignoreFileFor(root, "Dockerfile"); got != ".dockerignore" {
		t.Fatalf("without its own, the root one: %q", got)
	}
	if f, err := LoadIgnore(t.TempDir(), "Dockerfile"); err != nil || len(f.Patterns) != 0 {
		t.Fatalf("no ignore file: %+v, %v", f, err)
	}
}

func TestIgnorePatternsAreDockersWithTheirLines(t *testing.T) {
	data := "\xEF\xBB\xBFdocs\n# a comment\n\n  /build/  \r\n!build/keep\n  # not a comment\n"
	f, err := parseIgnore(".dockerignore", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []IgnorePattern{{1, "docs"}, {4, "build"}, {5, "!build/keep"}, {6, "# not a comment"}}
	if !slices.Equal(f.Patterns, want) {
		t.Fatalf("patterns %+v, want %+v", f.Patterns, want)
	}
	// The explanation is the selection's: a byte-order mark does not make git the culprit.
	sel, err := Filter(Listing{Files: []string{"docs/a.md", "build/x", "build/keep", "a"}}, Rules{Ignore: f})
	if err != nil || !slices.Equal(sel.Files, []string{"a", "build/keep"}) {
		t.Fatalf("Filter kept %+v, %v", sel, err)
	}
	if got := sel.Why("docs/a.md"); got.Reason != IgnoredByFile || got.String() != "excluded by .dockerignore line 1: docs" {
		t.Fatalf("Why(docs/a.md) = %+v, %q", got, got)
	}
	if got := sel.Why("build/x"); got.String() != "excluded by .dockerignore line 4: build" {
		t.Fatalf("Why(build/x) = %+v, %q", got, got)
	}
}

func tarGz(t *testing.T, headers []*tar.Header, contents []string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for i, h := range headers {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(contents[i]))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, contents[i])
	}
	tw.Close()
	zw.Close()
	p := filepath.Join(t.TempDir(), "a.tar.gz")
	os.WriteFile(p, b.Bytes(), 0o644)
	return p
}

func TestListArchiveReadsALargeDockerfileWholeOrSaysItIsTooLarge(t *testing.T) {
	big := "FROM scratch\n" + strings.Repeat("# padding line of a large Dockerfile\n", 60000) // > 2 MiB
	dir := t.TempDir()
	a, err := Write(context.Background(), dir, "c.tar.gz", []Entry{
		{Name: "Dockerfile", Type: tar.TypeReg, Mode: 0o644, Data: []byte(big)},
		{Name: "src", Type: tar.TypeDir, Mode: 0o755},
		{Name: "src/a", Type: tar.TypeReg, Mode: 0o644, Data: []byte("a")},
	}, time.Unix(0, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ListArchive(context.Background(), a.Path, []string{"Dockerfile"}, 8<<20)
	if err != nil || string(l.Files["Dockerfile"]) != big || !slices.Equal(l.Names, []string{"Dockerfile", "src", "src/a"}) {
		t.Fatalf("names %q, Dockerfile of %d bytes (want %d), %v", l.Names, len(l.Files["Dockerfile"]), len(big), err)
	}
	if _, err := ListArchive(context.Background(), a.Path, []string{"Dockerfile"}, 1<<20); !errors.Is(err, ErrMemberTooLarge) {
		t.Fatalf("a Dockerfile over the limit: %v, want ErrMemberTooLarge", err)
	}
	err = walkArchiveFile(context.Background(), a.Path, 1<<20, func(Member, io.Reader) error { return nil })
	if !errors.Is(err, ErrArchiveTooLarge) {
		t.Fatalf("unpacking over the limit: %v", err)
	}
}

func TestReadArchiveRefusesWhatLeavesTheRoot(t *testing.T) {
	for name, h := range map[string]*tar.Header{
		"a parent path":    {Name: "../x", Typeflag: tar.TypeReg},
		"an absolute path": {Name: "/etc/x", Typeflag: tar.TypeReg},
		"a link outside":   {Name: "l", Typeflag: tar.TypeSymlink, Linkname: "../../etc/passwd"},
		"a hard link out":  {Name: "h", Typeflag: tar.TypeLink, Linkname: "../x"},
		"a device":         {Name: "d", Typeflag: tar.TypeChar},
	} {
		t.Run(name, func(t *testing.T) {
			p := tarGz(t, []*tar.Header{{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, h}, []string{"", ""})
			err := walkArchiveFile(context.Background(), p, 0, func(m Member, _ io.Reader) error {
				t.Errorf("fn saw %s", m.Name)
				return nil
			})
			var ue *UnsafeArchiveError
			if !errors.As(err, &ue) {
				t.Fatalf("err %v, want an UnsafeArchiveError", err)
			}
		})
	}
	if err := walkArchive(context.Background(), strings.NewReader("not gzip"), 0, nil); err == nil {
		t.Fatal("a non-gzip stream was read")
	}
}

// FuzzReadArchive: whatever the bytes, walkArchive never panics and hands fn only names that
// stay inside the root.
func FuzzReadArchive(f *testing.F) {
	var ok bytes.Buffer
	if _, err := pack(context.Background(), &ok, []Entry{{Name: "Dockerfile", Type: tar.TypeReg, Mode: 0o644, Data: []byte("FROM scratch\n")}}, time.Unix(0, 0), nil); err != nil {
		f.Fatal(err)
	}
	f.Add(ok.Bytes())
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"))
	f.Add([]byte("not gzip"))
	f.Fuzz(func(t *testing.T, data []byte) {
		walkArchive(context.Background(), bytes.NewReader(data), 1<<20, func(m Member, content io.Reader) error {
			if p, err := NormalizePath(m.Name); err != nil || p != m.Name {
				t.Fatalf("member %q is not a clean path inside the root (%v)", m.Name, err)
			}
			_, err := io.Copy(io.Discard, content)
			return err
		})
	})
}

// FuzzParseIgnore: whatever the file, its patterns are Docker's own and each line is one of the file's.
func FuzzParseIgnore(f *testing.F) {
	f.Add([]byte("\xEF\xBB\xBFdocs\n# c\n\n !x \r\n"))
	f.Add([]byte("a\n\xEF\xBB\xBFb\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseIgnore(".dockerignore", data)
		if err != nil {
			return
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, p := range got.Patterns {
			if p.Line < 0 || p.Line > lines {
				t.Fatalf("pattern %q at line %d of %d", p.Pattern, p.Line, lines)
			}
		}
	})
}
