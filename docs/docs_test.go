// Package docs holds no code: its tests keep the documentation true (the README's size and
// links, every variable the code reads documented, the extending recipe run as written).
package docs

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/gittest"
)

// block is one fenced code block of a markdown file.
type block struct{ lang, text string }

func codeBlocks(t *testing.T, file string) []block {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []block
	var cur *block
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &block{lang: strings.TrimPrefix(line, "```")}
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
	}
	return blocks
}

func TestTheReadmeIsShortAndItsLinksLead(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n > 200 {
		t.Errorf("README.md has %d lines; the reference belongs in docs/, the README in 200 lines", n)
	}
	links(t, "../README.md")
	for _, f := range []string{"archive.md", "configuration.md", "development.md", "extending.md", "output.md", "serve.md"} {
		links(t, f)
	}
}

// links checks that every relative link of a markdown file to another one leads to a file.
func links(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\]\(((?:\.\./|docs/)?[A-Za-z-]+\.md)(?:#[a-z0-9-]+)?\)`).FindAllStringSubmatch(string(data), -1) {
		if _, err := os.Stat(filepath.Join(filepath.Dir(file), m[1])); err != nil {
			t.Errorf("%s links to %s, which does not exist", file, m[1])
		}
	}
}

// TestEveryVariableTheConfigReadsIsDocumented reads the names internal/config passes to its
// reader (r.str("NAME", …) and the like) and looks for each in configuration.md.
func TestEveryVariableTheConfigReadsIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../internal/config/*.go")
	read := regexp.MustCompile(`(?:r\.[a-zA-Z0-9]+|getenv)\("([A-Z][A-Z0-9_]+)"`)
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range read.FindAllStringSubmatch(string(src), -1) {
			names = append(names, m[1])
		}
	}
	if len(names) < 20 {
		t.Fatalf("found only %d variables in internal/config: the pattern no longer matches how it reads them", len(names))
	}
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		if !regexp.MustCompile(`\b` + name + `\b`).Match(doc) {
			t.Errorf("internal/config reads %s, which docs/configuration.md does not describe", name)
		}
	}
}

// TestTheExtendingRecipeWorksAsWritten makes a module next to a "clone" of this repository (a
// link to it), writes the go.mod lines and the magefile of extending.md, runs its commands and
// runs the smoke target, which packs the module's own checkout through the imported targets.
func TestTheExtendingRecipeWorksAsWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a separate module; not in -short")
	}
	t.Parallel()
	var gomod, magefile string
	var commands []string
	for _, b := range codeBlocks(t, "extending.md") {
		switch {
		case b.lang == "go-mod":
			gomod = b.text
		case b.lang == "go" && magefile == "":
			magefile = b.text
		case b.lang == "sh" && strings.Contains(b.text, "go tool mage"):
			commands = strings.Split(strings.TrimSpace(b.text), "\n")
		}
	}
	if gomod == "" || magefile == "" || len(commands) == 0 {
		t.Fatalf("extending.md lost its go.mod lines, magefile or commands (%q, %q, %q)", gomod, magefile, commands)
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.Symlink(repo, filepath.Join(root, "runtimebuild")); err != nil { // the clone beside it
		t.Fatal(err)
	}
	app := filepath.Join(root, "myapp")
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	gittest.Init(t, app, map[string]string{
		"go.mod":                "module example.com/myapp\n\ngo 1.26.0\n\n" + gomod,
		"go.sum":                string(sum), // what the module cache holds already: the test needs no network
		"magefiles/magefile.go": magefile,
		"Dockerfile":            "FROM scratch AS binary\nCOPY go.mod /\n",
		"scripts/smoke.sh":      "#!/bin/sh\nls \"$1\"\n",
	})
	os.Chmod(filepath.Join(app, "scripts", "smoke.sh"), 0o755)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		"MAGEFILE_CACHE=" + filepath.Join(root, "magecache"), "GOPROXY=off", "GOFLAGS=-mod=mod", "GOSUMDB=off"}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOTOOLCHAIN"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, gittest.Env()...)
	var out []byte
	for _, line := range commands {
		args := strings.Fields(line)
		if args[0] != "go" {
			t.Fatalf("extending.md runs %q: the test runs only go commands", line)
		}
		cmd := exec.Command("go", args[1:]...)
		cmd.Dir, cmd.Env = app, env
		if out, err = cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		if line == "go tool mage -l" {
			for _, target := range []string{"smoke", "context", "all", "status"} {
				if !strings.Contains(string(out), "\n  "+target+" ") {
					t.Errorf("go tool mage -l does not list %s:\n%s", target, out)
				}
			}
		}
	}
	if !strings.Contains(string(out), "agent-server-") || !strings.Contains(string(out), ".tar.gz") {
		t.Errorf("smoke did not see the archive context packed:\n%s", out)
	}
}

// TestTheReadmesGoToolMageRecipeMakesTheStaticBinary runs the README's command that makes, with
// `go tool mage -compile`, the binary `go run magefile.go -compile` makes: static, and naming this
// checkout's revision.
func TestTheReadmesGoToolMageRecipeMakesTheStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("links the targets; not in -short")
	}
	t.Parallel()
	if _, err := exec.LookPath("file"); err != nil {
		t.Skip("SKIPPED LOUDLY: no `file` command to tell static binaries")
	}
	var recipe string
	for _, b := range codeBlocks(t, "../README.md") {
		if b.lang == "sh" && strings.HasPrefix(b.text, "CGO_ENABLED=0 go tool mage -compile") {
			recipe = b.text
		}
	}
	if recipe == "" {
		t.Fatal("the README lost its go tool mage -compile recipe")
	}
	before, _ := exec.Command("git", "rev-parse", "HEAD").Output() // a commit during the test moves HEAD
	bin := filepath.Join(t.TempDir(), "runtimebuild")
	recipe = strings.Replace(recipe, `"$PWD/bin/runtimebuild"`, bin, 1) // not into this checkout
	cmd := exec.Command("sh", "-c", recipe)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", recipe, err, out)
	}
	if out, err := exec.Command("file", bin).CombinedOutput(); err != nil || !strings.Contains(string(out), "statically linked") {
		t.Fatalf("file %s: %v %s", bin, err, out)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("SKIPPED LOUDLY: not a git checkout (%v): no revision to compare", err)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.Contains(string(out), "(revision "+string(head[:12])) && (len(before) < 12 || !strings.Contains(string(out), "(revision "+string(before[:12]))) {
		t.Fatalf("version printed %q (%v), want the revision %.12s", out, err, head)
	}
}
