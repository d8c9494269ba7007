package server_test

import (
	"archive/tar"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/dockertest"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// unpackedHere is the docker builder's log line when it unpacks a context instead of sending
// the archive to the engine whole.
const unpackedHere = "unpacking the context here"

// The docker builder sends the context archive to the engine as one tar: what the ignore file
// excludes is not in it, directories, links and hard links arrive as the archive has them, and
// the Dockerfile is the checked one. What only a file system resolves (an ignore file that
// is a link, members written through a link, a hard link to an excluded file) is still
// built, from the context unpacked here.
func TestTheDockerBuilderSendsTheArchiveWholeWithoutWhatTheIgnoreFileExcludes(t *testing.T) {
	dockertest.Require(t)
	l := start(t, server.Options{Builder: engineBuilder(t)})
	image := uniqueImage(t)
	ignore := member{Name: ".dockerignore", Body: "secret.txt\nlogs/\n"}
	kept := []member{
		{Name: "sub/", Type: tar.TypeDir}, {Name: "sub/kept.txt", Body: "kept\n"},
		{Name: "same.txt", Type: tar.TypeLink, Link: "sub/kept.txt"},
		{Name: "link.txt", Type: tar.TypeSymlink, Link: "sub/kept.txt"},
		{Name: "secret.txt", Body: "not for the image\n"}, {Name: "logs/", Type: tar.TypeDir}, {Name: "logs/a.log", Body: "a\n"},
	}
	cases := []struct {
		name      string
		members   []member
		status    string
		unpacked  bool
		reasonHas string // of a FAILURE
	}{
		{"the kept files build", append([]member{ignore, {Name: "Dockerfile", Body: "FROM scratch\nCOPY sub/kept.txt same.txt link.txt /\n"}}, kept...),
			"SUCCESS", false, ""},
		{"an excluded file is not in the context", append([]member{ignore, {Name: "Dockerfile", Body: "FROM scratch\nCOPY secret.txt /\n"}}, kept...),
			"FAILURE", false, "secret.txt"},
		{"an excluded directory is not in the context", append([]member{ignore, {Name: "Dockerfile", Body: "FROM scratch\nCOPY logs/a.log /\n"}}, kept...),
			"FAILURE", false, "logs/a.log"},
		{"an ignore file that is a link is built unpacked", append([]member{{Name: "ignore.txt", Body: "secret.txt\n"},
			{Name: ".dockerignore", Type: tar.TypeSymlink, Link: "ignore.txt"}, {Name: "Dockerfile", Body: "FROM scratch\nCOPY secret.txt /\n"}}, kept...),
			"FAILURE", true, "secret.txt"},
		{"members written through a link are built unpacked", []member{{Name: "Dockerfile", Body: "FROM scratch\nCOPY kept.txt /\n"}, {Name: "kept.txt", Body: "k\n"},
			{Name: "d", Type: tar.TypeSymlink, Link: "."}, {Name: "d/Dockerfile", Body: "FROM scratch\nCOPY d /\n"}},
			"FAILURE", true, ""},
		{"a hard link to an excluded file is built unpacked", []member{{Name: ".dockerignore", Body: "secret.txt\n"}, {Name: "Dockerfile", Body: "FROM scratch\nCOPY copy.txt /\n"},
			{Name: "secret.txt", Body: "s\n"}, {Name: "copy.txt", Type: tar.TypeLink, Link: "secret.txt"}},
			"SUCCESS", true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, st, err := l.buildID(t, archive(t, c.members...), image)
			if string(st.Status) != c.status {
				t.Fatalf("status %+v (%v), want %s", st, err, c.status)
			}
			if c.reasonHas != "" && (err == nil || !strings.Contains(err.Error(), c.reasonHas)) {
				t.Fatalf("the failure %v does not name %s", err, c.reasonHas)
			}
			logs := l.buildLogs(t, id)
			if got := strings.Contains(logs, unpackedHere); got != c.unpacked {
				t.Fatalf("unpacked here: %v, want %v; log:\n%s", got, c.unpacked, logs)
			}
			if c.status == "SUCCESS" && !strings.Contains(logs, "COPY") {
				t.Fatalf("the log lacks the engine's steps:\n%s", logs)
			}
		})
	}
}
