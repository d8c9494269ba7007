package targets_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAnotherModuleImportsTheTargets makes a module of its own whose magefile has nothing but
// `//mage:import` of this package (testdata/consumer, the README's snippet), points it at this
// checkout, and lists its targets with mage.
func TestAnotherModuleImportsTheTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a separate module; not in -short")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	magefile, err := os.ReadFile(filepath.Join("testdata", "consumer", "magefiles", "magefile.go"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "magefiles"), 0o755)
	os.WriteFile(filepath.Join(dir, "magefiles", "magefile.go"), magefile, 0o644)
	gomod := "module example.com/consumer\n\ngo 1.25.0\n\n" +
		"require github.com/runtimebuild/runtimebuild v0.0.0\n\n" +
		"replace github.com/runtimebuild/runtimebuild => " + repo + "\n"
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644)
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum")) // the same dependencies: nothing to download
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644)

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "MAGEFILE_CACHE="+filepath.Join(dir, ".magecache"), "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("mod", "tidy")
	out := run("run", "github.com/magefile/mage", "-l")
	for _, target := range []string{"all", "context", "image", "serve", "status", "upload", "validate"} {
		if !strings.Contains(out, "\n  "+target+" ") {
			t.Errorf("mage -l of the importing module does not list %s:\n%s", target, out)
		}
	}
	if !strings.Contains(out, "packs SOURCE_DIR into a reproducible build-context tar.gz") {
		t.Errorf("the targets lost their docs:\n%s", out)
	}
}
