// Package result writes and reads the <archive>.json file beside each archive, cleans this
// tool's earlier outputs, and appends CI outputs.
package result

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/runtimebuild/runtimebuild/internal/outputdir"
	"github.com/runtimebuild/runtimebuild/internal/version"
)

// Generator marks the result files this tool wrote; CLEAN_OUTPUT removes only what they name.
const Generator = "runtimebuild"

// Result is the content of <archive>.json.
type Result struct {
	Generator  string   `json:"generator"`
	Archive    string   `json:"archive"` // base name of the archive beside this file
	SHA        string   `json:"sha"`
	ShortSHA   string   `json:"short_sha"`
	Ref        string   `json:"ref,omitempty"` // the git ref baked into OPENHANDS_BUILD_GIT_REF
	Target     string   `json:"target,omitempty"`
	BaseImage  string   `json:"base_image,omitempty"`
	Dockerfile string   `json:"dockerfile,omitempty"` // the source Dockerfile the archive's one was made from
	Tags       []string `json:"tags"`                 // every tag of the image, the target image's first
	Files      int      `json:"files,omitempty"`
	BytesIn    int64    `json:"bytes_in,omitempty"`
	BytesOut   int64    `json:"bytes_out"`
	SHA256     string   `json:"sha256"`

	BuildID string `json:"build_id,omitempty"`
	Status  string `json:"status,omitempty"`
	Image   string `json:"image,omitempty"`
	// CheckedOnly: the server's check builder only checked the archive; Status SUCCESS is its
	// word for a sound archive, and there is no image.
	CheckedOnly   bool    `json:"checked_only,omitempty"`
	UploadSeconds float64 `json:"upload_seconds,omitempty"`
	BuildSeconds  float64 `json:"build_seconds,omitempty"`
	// Stopped says why the client stopped following before the build ended (Ctrl-C, timeout):
	// Status is then the last status it saw.
	Stopped string `json:"stopped,omitempty"`
	// Telemetry is the server's account of the build's time (serve's own; other servers send none).
	Telemetry *runtimeapi.Telemetry `json:"telemetry,omitempty"`

	Tool string `json:"tool,omitempty"` // the runtimebuild that wrote the file: version and revision
}

// PathFor is the result file of an archive.
func PathFor(archive string) string { return archive + ".json" }

// Write stores r beside its archive, atomically.
func Write(archive string, r Result) error {
	r.Generator = Generator
	r.Tool = version.Get().String()
	r.Archive = filepath.Base(archive)
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return outputdir.WriteFile(PathFor(archive), append(data, '\n'))
}

// Read loads the result file of an archive.
func Read(archive string) (Result, error) {
	data, err := os.ReadFile(PathFor(archive))
	if err != nil {
		return Result{}, err
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return Result{}, fmt.Errorf("reading %s: %w", PathFor(archive), err)
	}
	return r, nil
}

// Clean removes from dir what this tool wrote there earlier: the result files marked with
// Generator, the archives they name, and temporary files of interrupted runs. Nothing else, and
// nothing another run is still writing or using.
func Clean(dir string) (removed []string, err error) {
	return outputdir.Clean(dir, owned)
}

// owned is the result file name and its archive when name is a result file of ours.
func owned(dir, name string) []string {
	if !strings.HasSuffix(name, ".json") {
		return nil
	}
	r, err := Read(filepath.Join(dir, strings.TrimSuffix(name, ".json")))
	if err != nil || r.Generator != Generator || r.Archive+".json" != name {
		return nil // not ours
	}
	return []string{r.Archive, name}
}

// outputName is what GitHub takes as an output name.
var outputName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// AppendGitHubOutput appends the outputs to file, GitHub Actions' output file (nothing when file
// is ""). A value on one line is written name=value; a value holding a line break is written in
// GitHub's multi-line form, name<<DELIMITER, with a random delimiter that does not occur in it,
// so that no value can end its own entry and add another. A name GitHub would not read is an
// error, and then nothing is written.
func AppendGitHubOutput(file string, pairs ...[2]string) error {
	if file == "" {
		return nil
	}
	var out strings.Builder
	for _, p := range pairs {
		name, value := p[0], p[1]
		if !outputName.MatchString(name) {
			return fmt.Errorf("%q is no output name: letters, digits, _ and -, not starting with a digit or -", name)
		}
		if !strings.ContainsAny(value, "\r\n") {
			fmt.Fprintf(&out, "%s=%s\n", name, value)
			continue
		}
		delimiter := newDelimiter(value)
		fmt.Fprintf(&out, "%s<<%s\n%s\n%s\n", name, delimiter, value, delimiter)
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("appending outputs to %s: %w", file, err)
	}
	_, err = f.WriteString(out.String()) // one write: the entries of a run stay together
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("appending outputs to %s: %w", file, err)
	}
	return nil
}

// newDelimiter is a heredoc delimiter that value does not contain, in the form GitHub's own
// toolkit uses.
func newDelimiter(value string) string {
	for {
		b := make([]byte, 16)
		rand.Read(b)
		if d := "ghadelimiter_" + hex.EncodeToString(b); !strings.Contains(value, d) {
			return d
		}
	}
}
