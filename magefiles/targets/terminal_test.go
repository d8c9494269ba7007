package targets_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/gittest"
)

// TestTheBarFitsARealTerminal packs in an 80-column tmux pane, as a user at a terminal does
// (PROGRESS=auto), and reads the screen afterwards: a bar wider than the terminal wraps, and
// every redraw then leaves a stale line behind.
func TestTheBarFitsARealTerminal(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("SKIPPED LOUDLY: no tmux to run a real terminal")
	}
	t.Parallel() // a process of its own in a tmux server of its own
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	f, err := os.Create(filepath.Join(src, "zeros.bin"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 30) // a few seconds of packing: many redraws
	f.Close()
	p := newPane(t, cleanEnv("SOURCE_DIR="+src, "INCLUDE_UNTRACKED=true"),
		fmt.Sprintf("cd %s && %s context", t.TempDir(), filepath.Join(binDir, "runtimebuild")))
	p.waitFor(regexp.MustCompile(`EXIT=\d+`))
	screen := p.tmux("capture-pane", "-p", "-S", "-200") // the scrollback too
	if !strings.Contains(screen, "EXIT=0") {
		t.Fatalf("context failed:\n%s", screen)
	}
	// A bar that wrapped leaves its frames or their wrapped ends behind: "packing 3/10 files",
	// "42% [=====", "12.0 MiB/s 5s left".
	if regexp.MustCompile(`packing \d+/\d+ |\d+% |\[=|/s |left\s*$`).MatchString(screen) {
		t.Fatalf("bar lines were left on the screen:\n%s", screen)
	}
}
