package pipeline

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/gittest"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// A secret found in the content while packing stops the run with nothing written, the
// finding named by file, line and rule, never the secret (issue 11).
func TestASecretInTheContentStopsPackingAndLeavesNothing(t *testing.T) {
	id := "AK" + "IA" + "Z7QW3ERTY5UIOP2L"
	files := gittest.Project()
	files["app/settings.py"] = "DEBUG = False\n\nAWS_KEY = '" + id + "'\n"
	src := gittest.Init(t, t.TempDir(), files)
	out := filepath.Join(t.TempDir(), "out")
	_, logs, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out})
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "app/settings.py:3 (aws-access-key-id)") {
		t.Fatalf("err = %v, want exit 2 naming app/settings.py:3", err)
	}
	if strings.Contains(err.Error()+logs, id) {
		t.Fatal("the secret was printed")
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Fatalf("left in OUTPUT_DIR: %v", left)
	}
	p, logs, err := pack(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out, "ALLOW_SECRETS": "app/,nothing/**"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, `ALLOW_SECRETS pattern "nothing/**" matches no packed file`) {
		t.Errorf("no warning for the pattern that matches nothing:\n%s", logs)
	}
	if listArchive(t, p.Archive.Path)["app/settings.py"] != files["app/settings.py"] {
		t.Error("the allowed file is not packed")
	}
}

// echoBuilder is a builder of a server that echoes the key in the image it reports.
type echoBuilder struct{ key string }

func (e echoBuilder) Build(ctx context.Context, job *server.Job, _ io.Writer) (string, error) {
	return "registry.test/echo:" + e.key, nil
}

func (echoBuilder) ImageExists(context.Context, string) (bool, error) { return false, nil }

// A server that echoes the key gets it neither printed nor stored (issue 11).
func TestAnEchoedKeyReachesNeitherLogsNorResultFileNorGitHubOutput(t *testing.T) {
	const key = "echo-me-5f0c2b9a7d"
	srv, err := server.New(server.Options{Key: key, Builder: echoBuilder{key}, WorkDir: filepath.Join(t.TempDir(), "w"), RegistryPrefix: "registry.test/rt"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	api := httptest.NewServer(srv.Handler())
	defer api.Close()
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	out := t.TempDir()
	ghOutput := filepath.Join(t.TempDir(), "github-output")
	cfg := load(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out, "RUNTIME_API_URL": api.URL, "RUNTIME_API_KEY": key,
		"POLL_INTERVAL": "20ms", "GITHUB_OUTPUT": ghOutput})
	var logs bytes.Buffer
	log := progress.New(&logs, "plain")
	client, err := NewClient(cfg.API, log)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Pack(context.Background(), cfg.Pack, cfg.Output.GitHubOutput, log)
	if err != nil {
		t.Fatal(err)
	}
	built, err := Send(context.Background(), client, p, cfg.API, cfg.Send, cfg.Output.GitHubOutput, log)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := os.ReadFile(result.PathFor(p.Archive.Path))
	gh, _ := os.ReadFile(ghOutput)
	for what, text := range map[string]string{"the logs": logs.String(), "the result file": string(stored), "GITHUB_OUTPUT": string(gh), "the image": built.Image} {
		if strings.Contains(text, key) {
			t.Errorf("%s hold the key:\n%s", what, text)
		}
	}
	// The image the server named, redacted, is no image reference any more: the image asked for
	// is reported instead, with a warning that shows the redacted name.
	if !strings.Contains(string(gh), "\nimage=registry.test/rt/agent-server:") || !strings.Contains(logs.String(), "registry.test/echo:[REDACTED]") {
		t.Errorf("GITHUB_OUTPUT:\n%s\nlogs:\n%s", gh, logs.String())
	}
}
