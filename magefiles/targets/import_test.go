package targets_test

import (
	"io"
	"net/http"
	"net/http/httptest"
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
	dir := consumerModule(t, "consumer", "module example.com/consumer\n\ngo 1.25.0\n\n")

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = cleanEnv("MAGEFILE_CACHE="+filepath.Join(dir, ".magecache"), "GOFLAGS=-mod=mod")
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

// TestANamespacedImportRunsWithGoToolMage imports the targets under `//mage:import rb` into a
// module that has an `all` of its own, runs them with `go tool mage` (mage declared as a tool),
// and checks that a resume hint names exactly what the user would type there.
func TestANamespacedImportRunsWithGoToolMage(t *testing.T) {
	dir := consumerModule(t, "consumer-rb", "module example.com/consumer\n\ngo 1.26.0\n\ntool github.com/magefile/mage\n\n")
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"WORKING"}`) // a build that never ends
	}))
	defer api.Close()

	run := func(wantErr bool, args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = cleanEnv("MAGEFILE_CACHE="+filepath.Join(dir, ".magecache"), "GOFLAGS=-mod=mod",
			"RUNTIME_API_URL="+api.URL, "RUNTIME_API_KEY=k", "BUILD_TIMEOUT=2s", "POLL_INTERVAL=100ms")
		out, err := cmd.CombinedOutput()
		if (err != nil) != wantErr {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(false, "mod", "tidy")
	out := run(false, "tool", "mage", "-l")
	for _, target := range []string{"all", "rb:all", "rb:context", "rb:status", "rb:version"} {
		if !strings.Contains(out, "\n  "+target+" ") {
			t.Errorf("go tool mage -l does not list %s:\n%s", target, out)
		}
	}
	out = run(true, "tool", "mage", "rb:status", "b-42")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "still WORKING after") || !strings.HasSuffix(last, "; follow it with: go tool mage rb:status b-42") {
		t.Fatalf("the hint does not name the command used:\n%s", out)
	}
}

// consumerModule makes, in a temporary directory, a module whose go.mod starts with gomodHead and
// requires this checkout (replaced by its path), with testdata/<fixture>'s magefile and our go.sum.
func consumerModule(t *testing.T, fixture, gomodHead string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a separate module; not in -short")
	}
	t.Parallel() // a module, a mage cache and processes of its own
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	magefile, err := os.ReadFile(filepath.Join("testdata", fixture, "magefiles", "magefile.go"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "magefiles"), 0o755)
	os.WriteFile(filepath.Join(dir, "magefiles", "magefile.go"), magefile, 0o644)
	gomod := gomodHead +
		"require github.com/runtimebuild/runtimebuild v0.0.0\n\n" +
		"replace github.com/runtimebuild/runtimebuild => " + repo + "\n"
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644)
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum")) // the same dependencies: nothing to download
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644)
	return dir
}
