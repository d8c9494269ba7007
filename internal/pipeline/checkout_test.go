package pipeline

import (
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/gittest"
)

// A checkout is data: packing it runs nothing its git configuration names, keeps the names
// git tracks as they are, and puts no local path in the image's source label.
func TestPackingAHostileCheckoutRunsNothingAndKeepsItsNames(t *testing.T) {
	files := gittest.Project()
	files["docs/a:b.txt"] = "colon"
	files["::error::x"] = "annotation"
	files[`back\slash.txt`] = "backslash"
	files["::error::link"] = "link:../outside" // warned about: the name is printed
	src := gittest.Init(t, t.TempDir(), files)
	gittest.Git(t, src, "remote", "add", "origin", t.TempDir())
	marks := gittest.Hostile(t, src)
	p, logs, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir()})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	gittest.NoMarks(t, marks)
	members := listArchive(t, p.Archive.Path)
	for _, name := range []string{"docs/a:b.txt", "::error::x", `back\slash.txt`} {
		if members[name] != files[name] {
			t.Errorf("%q: packed %q", name, members[name])
		}
	}
	if strings.Contains(members["Dockerfile"], "org.opencontainers.image.source") {
		t.Errorf("a local origin became the source label:\n%s", members["Dockerfile"])
	}
	if !strings.Contains(logs, "symlink ::error::link points outside") {
		t.Errorf("no warning names the link:\n%s", logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.HasPrefix(line, "::") {
			t.Errorf("a log line is a workflow command: %q", line)
		}
	}

	gittest.Git(t, src, "remote", "set-url", "origin", "https://ci:"+"gh"+"p_secret@github.com/o/r.git")
	p, logs, err = pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir()})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	if df := listArchive(t, p.Archive.Path)["Dockerfile"]; !strings.Contains(df, "org.opencontainers.image.source='https://github.com/o/r.git'") {
		t.Errorf("the source label of an https origin:\n%s", df)
	}
	gittest.NoMarks(t, marks)
}
