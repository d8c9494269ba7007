package buildctx

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/moby/patternmatcher/ignorefile"

	"github.com/runtimebuild/runtimebuild/internal/targz"
)

// IgnoreFile is a parsed .dockerignore: where it was read from and its patterns, each with its
// line. It is the one reader of ignore files: selection, explanations and builders share it.
type IgnoreFile struct {
	Path     string // slash path relative to the root; empty when there is no ignore file
	Patterns []IgnorePattern
}

// IgnorePattern is one pattern as BuildKit takes it ("!" first for a re-inclusion), with the
// line of the file it comes from (0 when the line could not be told).
type IgnorePattern struct {
	Line    int
	Pattern string
}

// Strings returns the patterns in file order, as patternmatcher.New takes them.
func (f IgnoreFile) Strings() []string {
	out := make([]string, len(f.Patterns))
	for i, p := range f.Patterns {
		out[i] = p.Pattern
	}
	return out
}

// maxIgnoreFile bounds an ignore file read (serve reads uploads' own).
const maxIgnoreFile = 16 << 20

// ignoreFileFor is the ignore file BuildKit reads with the Dockerfile at dockerfile (a slash
// path relative to the root of fsys): <dockerfile>.dockerignore beside it when that exists,
// else .dockerignore at the root.
func ignoreFileFor(fsys fs.FS, dockerfile string) string {
	if dockerfile != "" {
		own := path.Clean(dockerfile) + ".dockerignore"
		if fi, err := fs.Stat(fsys, own); err == nil && fi.Mode().IsRegular() {
			return own
		}
	}
	return ".dockerignore"
}

// LoadIgnore reads, in the directory root, the ignore file BuildKit would use with the
// Dockerfile at dockerfile (ReadIgnore).
func LoadIgnore(root, dockerfile string) (IgnoreFile, error) {
	return ReadIgnore(os.DirFS(root), dockerfile)
}

// ReadIgnore reads from fsys the ignore file BuildKit would use with the Dockerfile at
// dockerfile (see ignoreFileFor); no ignore file is no pattern. It is the one reader of ignore
// files: the client reads its source directory, serve an unpacked upload through an os.Root
// (whose FS follows no link out of it).
func ReadIgnore(fsys fs.FS, dockerfile string) (IgnoreFile, error) {
	rel := ignoreFileFor(fsys, dockerfile)
	f, err := fsys.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return IgnoreFile{}, nil
	}
	if err != nil {
		return IgnoreFile{}, fmt.Errorf("reading %s: %w", rel, err)
	}
	defer f.Close()
	data, err := targz.ReadAtMost(f, maxIgnoreFile)
	if err != nil {
		return IgnoreFile{}, fmt.Errorf("reading %s: %w", rel, err)
	}
	return parseIgnore(rel, data)
}

// parseIgnore parses the content of the ignore file at rel with Docker's own reader
// (patternmatcher/ignorefile: a byte-order mark, comments, blank lines, "!" and leading "/"
// handled as docker build handles them), and tells each pattern's line.
func parseIgnore(rel string, data []byte) (IgnoreFile, error) {
	patterns, err := ignorefile.ReadAll(bytes.NewReader(data))
	if err != nil {
		return IgnoreFile{}, fmt.Errorf("reading %s: %w", rel, err)
	}
	f := IgnoreFile{Path: rel, Patterns: make([]IgnorePattern, len(patterns))}
	for i, p := range patterns {
		f.Patterns[i].Pattern = p
	}
	// The same reader, line by line, tells where each pattern comes from.
	var lines []int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if n > 1 && bytes.HasPrefix(line, utf8BOM) {
			lines = nil // only the first line may carry a mark: give up telling lines
			break
		}
		one, err := ignorefile.ReadAll(io.MultiReader(bytes.NewReader(line), bytes.NewReader([]byte{'\n'})))
		if err == nil && len(one) == 1 {
			lines = append(lines, n)
		}
	}
	if len(lines) == len(patterns) {
		for i := range f.Patterns {
			f.Patterns[i].Line = lines[i]
		}
	}
	return f, nil
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}
