package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/gittest"
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
