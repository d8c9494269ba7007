package server

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/dockerfile"
	"github.com/runtimebuild/runtimebuild/internal/targz"
)

// entry is one member of a test archive: a file when Link is empty, else a symbolic link
// (or a hard link with Hard).
type entry struct {
	Name, Body, Link string
	Hard             bool
}

func writeArchive(t testing.TB, entries ...entry) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.Body))}
		if e.Link != "" {
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.Link, 0
			if e.Hard {
				h.Typeflag = tar.TypeLink
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.Body))
	}
	tw.Close()
	zw.Close()
	p := filepath.Join(t.TempDir(), "upload.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var rootDockerfile = entry{Name: "Dockerfile", Body: "FROM scratch\n"}

func TestLinksAreResolvedAsOnDisk(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		refused string // "" when the archive is sound
	}{
		{"a link back to the root, then a link through it", []entry{rootDockerfile,
			{Name: "r", Link: "."}, {Name: ".dockerignore", Link: "r/../etc/passwd"}}, "outside the archive"},
		{"a chain whose second link climbs from where the first leads", []entry{rootDockerfile,
			{Name: "a/b", Link: ".."}, {Name: "a/b/c", Link: ".."}}, "outside the archive"},
		{"a file written through a chain", []entry{rootDockerfile,
			{Name: "a/b", Link: ".."}, {Name: "a/b/c", Link: ".."}, {Name: "a/b/c/escaped.txt", Body: "x"}}, "outside the archive"},
		{"a link that escapes only once a later link is there", []entry{rootDockerfile,
			{Name: "p", Link: "q/.."}, {Name: "q", Link: "."}}, `member "p": a link to "q/..", which resolves outside the archive`},
		{"a hard link through a link", []entry{rootDockerfile,
			{Name: "r", Link: "."}, {Name: "h", Link: "r/../x", Hard: true}}, "hard link"},
		{"links that never end", []entry{rootDockerfile, {Name: "a", Link: "b"}, {Name: "b", Link: "a"}}, "more than 40 links"},
		{"the same link twice", []entry{rootDockerfile, {Name: "a", Link: "x"}, {Name: "a", Link: "y"}}, "a link where a link"},
		{"a link over a directory of links", []entry{rootDockerfile, {Name: "a/x", Link: "y"}, {Name: "a", Link: "b"}}, "a link where a link or a directory of links"},
		{"links inside, as node_modules has them", []entry{rootDockerfile, {Name: "lib/tool.js", Body: "x"},
			{Name: "node_modules/.bin/tool", Link: "../../lib/tool.js"}, {Name: "src", Link: "lib"}, {Name: "src/more.js", Body: "y"},
			{Name: "up/here", Link: "../src/../lib"}}, ""},
		{"a dangling link inside", []entry{rootDockerfile, {Name: "later", Link: "not/yet/there"}}, ""},
		{"an image archive naming a layer outside", []entry{{Name: "manifest.json", Body: `[{"Config":"c.json","Layers":["../../../etc/hostname"]}]`},
			{Name: "c.json", Body: "{}"}}, "manifest.json names"},
		{"an image archive naming a layer through a link out", []entry{{Name: "manifest.json", Body: `[{"Config":"c.json","Layers":["r/../x/layer.tar"]}]`},
			{Name: "c.json", Body: "{}"}, {Name: "r", Link: "."}}, "manifest.json names"},
		{"an image archive with a layer linked to another", []entry{{Name: "manifest.json", Body: `[{"Config":"c.json","Layers":["a/layer.tar","b/layer.tar"]}]`},
			{Name: "c.json", Body: "{}"}, {Name: "a/layer.tar", Body: "x"}, {Name: "b/layer.tar", Link: "../a/layer.tar"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := inspect(context.Background(), writeArchive(t, tt.entries...), 1<<20)
			var ua unsafeArchive
			switch {
			case tt.refused == "" && err != nil:
				t.Fatalf("a sound archive refused: %v", err)
			case tt.refused != "" && (!errors.As(err, &ua) || !strings.Contains(err.Error(), tt.refused)):
				t.Fatalf("err %v, want it refused (422) with %q", err, tt.refused)
			}
		})
	}
}

func TestTheCheckBuilderReadsTheUploadOnlyInsideIt(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("Dockerfile\n"), 0o600)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY Dockerfile /\n"), 0o644)
	// As if a link out had got past the archive check: the builder still must not follow it.
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, ".dockerignore")); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	err := checkContext(dir, "", &log)
	if err == nil || !strings.Contains(err.Error(), ".dockerignore") {
		t.Fatalf("checkContext read .dockerignore through a link out of the upload: err %v\n%s", err, log.String())
	}
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "manifest.json"))
	if err := checkImage(dir); err == nil {
		t.Fatal("checkImage read manifest.json through a link out of the upload")
	}
}

func TestALinkMazeIsRefusedWithinTheStepBudget(t *testing.T) {
	// 39 links, each a long way down and back up to the next, and members in new directories
	// through them: every member costs a full walk of the maze.
	down, up := strings.Repeat("d/", 680), strings.Repeat("../", 680)
	entries := []entry{rootDockerfile}
	for i := 0; i < 39; i++ {
		entries = append(entries, entry{Name: fmt.Sprintf("l%d", i), Link: fmt.Sprintf("%s%sl%d", down, up, i+1)})
	}
	entries = append(entries, entry{Name: "l39", Link: "real"})
	for i := 0; i < 5000; i++ {
		entries = append(entries, entry{Name: fmt.Sprintf("l0/d%d/f", i), Body: "x"})
	}
	_, err := inspect(context.Background(), writeArchive(t, entries...), 1<<30)
	if err == nil || !strings.Contains(err.Error(), "more links to resolve than are checked") {
		t.Fatalf("err %v, want the maze refused once it has cost the step budget", err)
	}
}

func TestAnArchiveWithManyLinksInsideIsAccepted(t *testing.T) {
	entries := []entry{rootDockerfile}
	for i := 0; i < 10000; i++ {
		entries = append(entries, entry{Name: fmt.Sprintf("node_modules/pkg%d/lib/f%d.js", i/10, i%10), Body: "x"})
		if i%10 == 9 {
			entries = append(entries, entry{Name: fmt.Sprintf("node_modules/.bin/tool%d", i/10), Link: fmt.Sprintf("../pkg%d/lib/f0.js", i/10)})
		}
	}
	if _, err := inspect(context.Background(), writeArchive(t, entries...), 1<<30); err != nil {
		t.Fatalf("1,000 links inside among 10,000 files: %v", err)
	}
}

func TestAnArchiveOfMoreMembersThanABuilderListsIsRefused(t *testing.T) {
	const max = 100 // inspect's is maxMembers; a million members take a minute to write under -race
	entries := []entry{rootDockerfile}
	for i := 0; i < max; i++ { // empty files: a small upload, many names to list
		entries = append(entries, entry{Name: fmt.Sprintf("f%d", i)})
	}
	_, err := walk(context.Background(), writeArchive(t, entries...), 1<<30, max, func(targz.Member, io.Reader) error { return nil })
	var ua unsafeArchive
	if !errors.As(err, &ua) || !strings.Contains(err.Error(), "more than 100 members") {
		t.Fatalf("err %v, want the archive refused for its number of members", err)
	}
	if _, err := walk(context.Background(), writeArchive(t, entries[:max]...), 1<<30, max, func(targz.Member, io.Reader) error { return nil }); err != nil {
		t.Fatalf("%d members, the most allowed: %v", max, err)
	}
}

// entriesOf turns fuzz bytes into archive members named from a small alphabet, so that names
// and links meet often: each member is a kind byte, then name and (for links) target parts.
func entriesOf(data []byte) []entry {
	parts := []string{"a", "b", "c", "..", "."}
	take := func() string {
		if len(data) == 0 {
			return "a"
		}
		n := int(data[0]%3) + 1
		data = data[1:]
		var p []string
		for i := 0; i < n && len(data) > 0; i++ {
			p = append(p, parts[int(data[0])%len(parts)])
			data = data[1:]
		}
		if len(p) == 0 {
			return "a"
		}
		return strings.Join(p, "/")
	}
	entries := []entry{rootDockerfile}
	for len(data) > 0 && len(entries) < 12 {
		kind := data[0] % 3
		data = data[1:]
		e := entry{Name: take()}
		switch kind {
		case 1:
			e.Link = take()
		case 2:
			e.Name += "/f"
		}
		entries = append(entries, e)
	}
	return entries
}

// FuzzAcceptedLinksStayInsideOnDisk checks the resolution of links against the kernel's: an
// archive that inspect accepts, once unpacked, holds no link that resolves outside.
func FuzzAcceptedLinksStayInsideOnDisk(f *testing.F) {
	f.Add([]byte{1, 0, 0, 1, 0, 3}) // a -> ..
	f.Add([]byte{1, 1, 0, 1, 1, 0, 4, 1, 1, 0, 1, 1, 0, 3, 0, 1, 0, 3, 2, 0, 1, 1})
	f.Add([]byte{1, 0, 0, 0, 1, 0, 4, 1, 1, 3, 0, 1, 3, 0, 4, 3, 2})
	f.Add([]byte{0, 2, 0, 1, 2, 1, 0, 0, 1, 0, 2, 3, 3, 0})
	f.Add([]byte{1, 0, 0, 1, 1, 3, 1, 0, 1, 0, 4}) // a -> b/.., then b -> .: out only once b is there
	f.Fuzz(func(t *testing.T, data []byte) {
		archive := writeArchive(t, entriesOf(data)...)
		if _, err := inspect(context.Background(), archive, 1<<20); err != nil {
			return // refused: nothing reaches a builder
		}
		dir := t.TempDir()
		unpack(context.Background(), archive, dir, 1<<20) // a member the disk refuses (a name taken) stops it: check what is there
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			t.Fatal(err)
		}
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.Type()&os.ModeSymlink == 0 {
				return nil
			}
			to, err := filepath.EvalSymlinks(p)
			if err == nil && to != real && !strings.HasPrefix(to, real+string(filepath.Separator)) {
				t.Fatalf("accepted %v, and on disk %s resolves to %s, outside", entriesOf(data), p, to)
			}
			return nil
		})
	})
}

func TestServeBuildsTheStageTheClientNamesWhenTheDockerfileHasIt(t *testing.T) {
	for _, tt := range []struct {
		name, dockerfile, want, stage, log string
	}{
		{"no stage named: the last", "FROM scratch AS a\nFROM scratch AS b\n", "", "", ""},
		{"a stage named in another case: as BuildKit names it", "FROM scratch AS builder\nFROM scratch AS final\n", "Builder", "builder", ""},
		{"an unknown stage: the last, said in the log", "FROM scratch AS a\n", "nope", "", `no stage "nope"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			model, err := dockerfile.Parse([]byte(tt.dockerfile))
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			stage := chooseStage(model, tt.want, &log)
			if stage != tt.stage || (tt.log == "") != (log.Len() == 0) || !strings.Contains(log.String(), tt.log) {
				t.Fatalf("stage %q, %v, log %q; want %q, log with %q", stage, err, log.String(), tt.stage, tt.log)
			}
		})
	}
}

// A Dockerfile BuildKit's parser refuses is refused by guard, before any stage is chosen: the
// job fails saying why, as the builder would.
func TestServeRefusesADockerfileThatDoesNotParseBeforeChoosingAStage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPPY a b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, model, err := guard(context.Background(), dir, &Job{Target: "a", TargetImage: "localhost/runtime/app:1"})
	if err == nil || model != nil || !strings.Contains(err.Error(), "reading the Dockerfile") || !strings.Contains(err.Error(), "COPPY") {
		t.Fatalf("model %v, err %v; want the parser's refusal", model, err)
	}
}
