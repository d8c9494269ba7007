package result

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWriteAndReadRoundTripBesideTheArchive(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "a.tar.gz")
	in := Result{SHA: "abc", Ref: "main", Target: "source", Dockerfile: "x/Dockerfile", Tags: []string{"abc-python-source", "main-python-source"}, SHA256: "00"}
	if err := Write(archive, in); err != nil {
		t.Fatal(err)
	}
	got, err := Read(archive)
	in.Generator, in.Archive = Generator, "a.tar.gz"
	if err != nil || got.SHA != in.SHA || got.Ref != in.Ref || got.Dockerfile != in.Dockerfile || !slices.Equal(got.Tags, in.Tags) || got.Archive != in.Archive || got.Generator != Generator {
		t.Fatalf("read %+v, %v; want %+v", got, err, in)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".runtimebuild-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestCleanRemovesOnlyWhatItsResultFilesName(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"ours.tar.gz": "a", "theirs.tar.gz": "b", "notes.json": `{"generator":"other","archive":"theirs.tar.gz"}`,
		".runtimebuild-1.tmp": "interrupted",
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	if err := Write(filepath.Join(dir, "ours.tar.gz"), Result{}); err != nil {
		t.Fatal(err)
	}
	removed, err := Clean(dir)
	if err != nil || !slices.Equal(removed, []string{".runtimebuild-1.tmp", "ours.tar.gz", "ours.tar.gz.json"}) {
		t.Fatalf("removed %q, %v", removed, err)
	}
	for _, kept := range []string{"theirs.tar.gz", "notes.json"} {
		if _, err := os.Stat(filepath.Join(dir, kept)); err != nil {
			t.Errorf("%s: %v", kept, err)
		}
	}
}

// readOutputs parses an output file as GitHub's runner does (actions/runner, SetOutputFileCommand):
// each line is name=value, or name<<DELIMITER followed by the value's lines up to a line that is
// the delimiter; a line break is \n, \r\n or \r.
func readOutputs(t *testing.T, file string) [][2]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\r", "\n")
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	var out [][2]string
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		eq, here := strings.Index(line, "="), strings.Index(line, "<<")
		if eq >= 0 && (here < 0 || eq < here) {
			out = append(out, [2]string{line[:eq], line[eq+1:]})
			continue
		}
		if here < 0 {
			t.Fatalf("line %d, %q, is no output", i+1, line)
		}
		name, delimiter := line[:here], line[here+2:]
		var value []string
		for i++; ; i++ {
			if i == len(lines) {
				t.Fatalf("no line %q ends %s", delimiter, name)
			}
			if lines[i] == delimiter {
				break
			}
			value = append(value, lines[i])
		}
		out = append(out, [2]string{name, strings.Join(value, "\n")})
	}
	return out
}

func TestGitHubOutputKeepsEachValueInItsEntry(t *testing.T) {
	hostile := []string{
		"x; touch /tmp/PWNED #\u202e",
		"b1\nimage=evil.example/app:1",
		"b1\r\nimage=evil",
		"EOF\nimage=evil\nEOF",
		"a<<b",
		"ghadelimiter_\nx",
		"ends in a line break\n",
		"",
	}
	for _, v := range hostile {
		t.Run(v, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "out")
			os.WriteFile(file, []byte("earlier=1\n"), 0o644) // appended, never replaced
			if err := AppendGitHubOutput(file, [2]string{"build_id", v}, [2]string{"image", "r/i:t"}); err != nil {
				t.Fatal(err)
			}
			got := readOutputs(t, file)
			want := strings.ReplaceAll(v, "\r\n", "\n") // the runner joins a value's lines with \n
			if len(got) != 3 || got[0] != [2]string{"earlier", "1"} || got[1] != [2]string{"build_id", want} || got[2] != [2]string{"image", "r/i:t"} {
				t.Fatalf("outputs %q", got)
			}
		})
	}
	file := filepath.Join(t.TempDir(), "out")
	if err := AppendGitHubOutput(file, [2]string{"tags", "a,b"}, [2]string{"image", "r/i:t"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != "tags=a,b\nimage=r/i:t\n" {
		t.Fatalf("single-line values are not name=value lines: %q", b)
	}
	if err := AppendGitHubOutput("", [2]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
}

func TestGitHubOutputRefusesANameGitHubWouldMisread(t *testing.T) {
	for _, name := range []string{"", "a=b", "a<<EOF", "a\nb", "1st", "-x", "sp ace"} {
		file := filepath.Join(t.TempDir(), "out")
		if err := AppendGitHubOutput(file, [2]string{"ok", "1"}, [2]string{name, "v"}); err == nil {
			t.Errorf("name %q was accepted", name)
		}
		if b, err := os.ReadFile(file); err == nil && len(b) > 0 {
			t.Errorf("name %q: %q was written beside the refused name", name, b)
		}
	}
}
