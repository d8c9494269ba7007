package targz

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// gz writes the members (contents[i] the body of headers[i]) as a gzip tar.
func gz(t testing.TB, headers []*tar.Header, contents []string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for i, h := range headers {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(contents[i]))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, contents[i])
	}
	tw.Close()
	zw.Close()
	return b.Bytes()
}

func file(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "a.tar.gz")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func reg(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg} }

func TestTheWalkerRefusesWhatLeavesTheRootOrExceedsItsLimits(t *testing.T) {
	unsafe := func(reason string) func(error) bool {
		return func(err error) bool {
			var e *UnsafeMemberError
			return errors.As(err, &e) && strings.Contains(e.Reason, reason)
		}
	}
	tooMany := func(err error) bool { var e *TooManyMembersError; return errors.As(err, &e) && e.Max == 3 }
	tooLarge := func(err error) bool { var e *TooLargeError; return errors.As(err, &e) && e.Limit == 32<<10 }
	three := Limits{Members: 3}
	for _, tt := range []struct {
		name     string
		headers  []*tar.Header
		contents []string
		refused  func(error) bool // nil: accepted
		limits   Limits           // zero: 32 KiB and 64 members
	}{
		{"a name climbing out", []*tar.Header{reg("../x")}, []string{"x"}, unsafe("leaves the root"), Limits{}},
		{"a name climbing out behind a directory", []*tar.Header{reg("a/../../x")}, []string{"x"}, unsafe("leaves the root"), Limits{}},
		{"an absolute name", []*tar.Header{reg("/etc/x")}, []string{"x"}, unsafe("is absolute"), Limits{}},
		{"a symbolic link climbing out", []*tar.Header{{Name: "a/l", Typeflag: tar.TypeSymlink, Linkname: "../../etc/passwd"}}, []string{""}, unsafe("outside the archive"), Limits{}},
		{"a symbolic link to an absolute path", []*tar.Header{{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}}, []string{""}, unsafe("outside the archive"), Limits{}},
		{"a symbolic link that escapes once a later one is there", []*tar.Header{
			{Name: "p", Typeflag: tar.TypeSymlink, Linkname: "q/.."}, {Name: "q", Typeflag: tar.TypeSymlink, Linkname: "."}}, []string{"", ""}, unsafe(`a link to "q/..", which resolves outside`), Limits{}},
		{"a file written through a link out", []*tar.Header{
			{Name: "a/b", Typeflag: tar.TypeSymlink, Linkname: ".."}, {Name: "a/b/c", Typeflag: tar.TypeSymlink, Linkname: ".."}, reg("a/b/c/x")}, []string{"", "", "x"}, unsafe("outside the archive"), Limits{}},
		{"a hard link to outside", []*tar.Header{{Name: "h", Typeflag: tar.TypeLink, Linkname: "../x"}}, []string{""}, unsafe("a hard link"), Limits{}},
		{"a hard link through a link", []*tar.Header{
			{Name: "r", Typeflag: tar.TypeSymlink, Linkname: "."}, {Name: "h", Typeflag: tar.TypeLink, Linkname: "r/../x"}}, []string{"", ""}, unsafe("a hard link"), Limits{}},
		{"a device", []*tar.Header{{Name: "d", Typeflag: tar.TypeChar}}, []string{""}, unsafe("neither file, directory nor link"), Limits{}},
		{"a name longer than PATH_MAX", []*tar.Header{reg(strings.Repeat("n/", MaxName/2) + "n")}, []string{""}, unsafe("longer than"), Limits{}},
		{"more members than the limit", []*tar.Header{reg("a"), reg("b"), reg("c"), reg("d")}, []string{"", "", "", ""}, tooMany, three},
		{"as many members as the limit, the root not counted", []*tar.Header{{Name: "./", Typeflag: tar.TypeDir}, reg("a"), reg("b")}, []string{"", "", ""}, nil, three},
		{"a gzip bomb beyond the size limit", []*tar.Header{reg("zeros")}, []string{strings.Repeat("\x00", 64<<10)}, tooLarge, Limits{}},
		{"links inside, as node_modules has them", []*tar.Header{reg("lib/tool.js"),
			{Name: "node_modules/.bin/tool", Typeflag: tar.TypeSymlink, Linkname: "../../lib/tool.js"},
			{Name: "src", Typeflag: tar.TypeSymlink, Linkname: "lib"}, reg("src/more.js"),
			{Name: "h", Typeflag: tar.TypeLink, Linkname: "lib/tool.js"}}, []string{"x", "", "", "y", ""}, nil, Limits{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var seen []string
			_, err := Walk(context.Background(), bytes.NewReader(gz(t, tt.headers, tt.contents)), cmp.Or(tt.limits, Limits{Bytes: 32 << 10, Members: 64}),
				func(m Member, r io.Reader) error {
					seen = append(seen, m.Name)
					_, err := io.Copy(io.Discard, r)
					return err
				})
			switch {
			case tt.refused == nil && err != nil:
				t.Fatalf("a sound archive refused: %v", err)
			case tt.refused != nil && !tt.refused(err):
				t.Fatalf("err %v (%T), want it refused; fn saw %q", err, err, seen)
			}
		})
	}
}

func TestAStreamThatIsNotATarGzIsAFormatError(t *testing.T) {
	for name, data := range map[string][]byte{
		"not gzip": []byte("not gzip"),
		"gzip, but not tar": func() []byte {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write([]byte("plain text, long enough to be no tar header"))
			zw.Close()
			return b.Bytes()
		}(),
	} {
		_, err := Walk(context.Background(), bytes.NewReader(data), Limits{}, func(Member, io.Reader) error { return nil })
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: %v, want a FormatError", name, err)
		}
	}
}

func TestTheWalkerStopsWhenTheContextIsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	data := gz(t, []*tar.Header{reg("a"), reg("b")}, []string{"a", "b"})
	_, err := Walk(ctx, bytes.NewReader(data), Limits{}, func(Member, io.Reader) error { cancel(); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestListReadsALargeFileWholeOrSaysItIsTooLarge(t *testing.T) {
	big := "FROM scratch\n" + strings.Repeat("# padding line of a large Dockerfile\n", 60000) // > 2 MiB
	p := file(t, gz(t, []*tar.Header{reg("Dockerfile"), {Name: "src", Typeflag: tar.TypeDir, Mode: 0o755}, reg("src/a")}, []string{big, "", "a"}))
	l, err := List(context.Background(), p, []string{"Dockerfile"}, 8<<20)
	if err != nil || string(l.Files["Dockerfile"]) != big || !slices.Equal(l.Names, []string{"Dockerfile", "src", "src/a"}) {
		t.Fatalf("names %q, Dockerfile of %d bytes (want %d), %v", l.Names, len(l.Files["Dockerfile"]), len(big), err)
	}
	if _, err := List(context.Background(), p, []string{"Dockerfile"}, 1<<20); !errors.Is(err, ErrMemberTooLarge) {
		t.Fatalf("a Dockerfile over the limit: %v, want ErrMemberTooLarge", err)
	}
	_, err = WalkFile(context.Background(), p, Limits{Bytes: 1 << 20}, func(Member, io.Reader) error { return nil })
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Limit != 1<<20 {
		t.Fatalf("unpacking over the limit: %v", err)
	}
}

func TestTheLinksResolveNamesAsTheUnpackedArchiveWill(t *testing.T) {
	links, err := Walk(context.Background(), bytes.NewReader(gz(t, []*tar.Header{
		{Name: "r", Typeflag: tar.TypeSymlink, Linkname: "."}, {Name: "d/up", Typeflag: tar.TypeSymlink, Linkname: ".."}, reg("x")},
		[]string{"", "", "x"})), Limits{}, func(Member, io.Reader) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		escape bool
	}{
		{"x", false}, {"r/x", false}, {"d/up/x", false}, {"r/../x", true}, {"d/up/../x", true}, {"d/../x", false},
	} {
		if err := links.Resolve(tt.name, true); errors.Is(err, ErrEscapes) != tt.escape {
			t.Errorf("Resolve(%q) = %v, want escaping %v", tt.name, err, tt.escape)
		}
	}
}

func TestAManifestListsTheFilesItNames(t *testing.T) {
	m, err := ParseManifest([]byte(`[{"Config":"c.json","RepoTags":["x:1"],"Layers":["a/layer.tar","b/layer.tar"]}]`))
	if err != nil || !slices.Equal(m.Files(), []string{"c.json", "a/layer.tar", "b/layer.tar"}) || m[0].RepoTags[0] != "x:1" {
		t.Fatalf("manifest %+v, %v", m, err)
	}
	for _, bad := range []string{`{}`, `[]`, `not json`} {
		if _, err := ParseManifest([]byte(bad)); err == nil || !strings.Contains(err.Error(), "not a docker save manifest") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// FuzzWalk: whatever the bytes, Walk never panics, hands fn only clean names inside the root,
// and refuses with one of its typed errors.
func FuzzWalk(f *testing.F) {
	f.Add(gz(f, []*tar.Header{reg("Dockerfile")}, []string{"FROM scratch\n"}))
	f.Add(gz(f, []*tar.Header{{Name: "a/b", Typeflag: tar.TypeSymlink, Linkname: ".."}, {Name: "a/b/c", Typeflag: tar.TypeSymlink, Linkname: ".."}, reg("a/b/c/x")}, []string{"", "", "x"}))
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"))
	f.Add([]byte("not gzip"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Walk(context.Background(), bytes.NewReader(data), Limits{Bytes: 1 << 20, Members: 64}, func(m Member, content io.Reader) error {
			if p, err := CleanName(m.Name); err != nil || p != m.Name {
				t.Fatalf("member %q is not a clean name inside the root (%v)", m.Name, err)
			}
			_, err := io.Copy(io.Discard, content)
			return err
		})
		var (
			fe *FormatError
			ue *UnsafeMemberError
			tm *TooManyMembersError
			tl *TooLargeError
		)
		if err != nil && !errors.As(err, &fe) && !errors.As(err, &ue) && !errors.As(err, &tm) && !errors.As(err, &tl) {
			t.Fatalf("untyped refusal %v (%T)", err, err)
		}
	})
}

// Listing is an archive's member names and the content of the files asked for.
type Listing struct {
	Names []string          // every member, in archive order
	Files map[string][]byte // the regular files asked for that the archive holds
}

// List (the tests' reader) lists the archive at file and reads the regular files named in want, each at most max
// bytes: a larger one is ErrMemberTooLarge, never silently cut.
func List(ctx context.Context, file string, want []string, max int64) (Listing, error) {
	l := Listing{Files: map[string][]byte{}}
	_, err := WalkFile(ctx, file, Limits{}, func(m Member, content io.Reader) error {
		l.Names = append(l.Names, m.Name)
		for _, w := range want {
			if m.Name == w && m.Header.Typeflag == tar.TypeReg {
				b, err := ReadAtMost(content, max)
				if err != nil {
					return fmt.Errorf("reading %s: %w", m.Name, err)
				}
				l.Files[m.Name] = b
			}
		}
		return nil
	})
	return l, err
}
