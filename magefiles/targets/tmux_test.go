package targets_test

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/gittest"
)

// pane is a detached 80x24 tmux session on a tmux server of its own, running one shell command.
type pane struct {
	t      *testing.T
	socket string
	env    []string
}

func newPane(t *testing.T, env []string, script string) *pane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("SKIPPED LOUDLY: no tmux to run a real terminal")
	}
	p := &pane{t: t, socket: fmt.Sprintf("runtimebuild-%d-%s", os.Getpid(), strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())),
		env: append(env, "TERM=xterm-256color")}
	// The shell catches SIGINT (its child then starts with the default disposition, as from an
	// interactive shell) so that Ctrl-C ends the program and not the shell that reports its status.
	p.tmux("new-session", "-d", "-x", "80", "-y", "24", "sh", "-c", "trap 'true' INT; "+script+"; echo EXIT=$?; sleep 300")
	t.Cleanup(func() { exec.Command("tmux", "-L", p.socket, "kill-server").Run() })
	return p
}

func (p *pane) tmux(args ...string) string {
	p.t.Helper()
	cmd := exec.Command("tmux", append([]string{"-L", p.socket}, args...)...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen is what the pane shows now.
func (p *pane) screen() string { return p.tmux("capture-pane", "-p") }

// waitFor polls the screen until it matches re, within a deadline, and returns it.
func (p *pane) waitFor(re *regexp.Regexp) string {
	p.t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		s := p.screen()
		if re.MatchString(s) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no %s on the screen within 120s:\n%s", re, s)
		}
		time.Sleep(50 * time.Millisecond) // polling the pane, with a deadline
	}
}

// slowUploadAPI is a Runtime API that takes an upload at about 1 MiB/s and whose builds never end.
func slowUploadAPI(t *testing.T) string {
	return unendingAPI(t, func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := io.CopyN(io.Discard, r.Body, 64<<10); err != nil {
				break
			}
			time.Sleep(60 * time.Millisecond) // the pace of a slow link, not a wait for anything
		}
		io.WriteString(w, `{"build_id":"b-0123456789"}`)
	})
}

// TestCtrlCClearsTheLineAtEightyColumnsInEveryPhase runs the binary in a real 80-column terminal
// (tmux), waits for the bar or live line of each phase, checks that it fits with a visible bar,
// presses Ctrl-C, and reads the screen: the line is gone, and the last line says what is left.
func TestCtrlCClearsTheLineAtEightyColumnsInEveryPhase(t *testing.T) {
	random := make([]byte, 6<<20) // incompressible: the archive is as large, and its upload takes seconds
	rand.Read(random)
	for _, tt := range []struct {
		name, target string
		source       func(t *testing.T) string
		env          []string
		drawn        *regexp.Regexp // the line while it runs
		last         string         // the screen's last line of output after Ctrl-C
	}{
		{"packing", "context", bigCheckout, []string{"INCLUDE_UNTRACKED=true"},
			regexp.MustCompile(`\[runtime-build\] packing +\d+/\d+ +\d+% \[[= ]{10,}\] `), "Error: interrupted: nothing was written"},
		{"uploading", "upload", func(t *testing.T) string {
			return gittest.Init(t, t.TempDir(), map[string]string{"Dockerfile": "FROM scratch AS binary\nCOPY . /\n", "random.bin": string(random)})
		}, nil, regexp.MustCompile(`\[runtime-build\] uploading +\d+% \[[= ]{10,}\] `), "Error: interrupted while uploading: {archive} and {archive}.json were written, nothing was built; run it again to upload"},
		{"polling", "upload", func(t *testing.T) string {
			return gittest.Init(t, t.TempDir(), map[string]string{"Dockerfile": "FROM scratch AS binary\nCOPY . /\n"})
		}, []string{"POLL_INTERVAL=100ms"}, regexp.MustCompile(`\[runtime-build\] build b-0123456789: WORKING \S+ \d+s`),
			"Error: interrupted while waiting for build b-0123456789: the build goes on on the server: follow it with: " + filepath.Join(binDir, "runtimebuild") + " status b-0123456789"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := cleanEnv(append([]string{"SOURCE_DIR=" + tt.source(t), "RUNTIME_API_URL=" + slowUploadAPI(t), "RUNTIME_API_KEY=k"}, tt.env...)...)
			dir := t.TempDir()
			p := newPane(t, env, fmt.Sprintf("cd %s && %s %s", dir, filepath.Join(binDir, "runtimebuild"), tt.target))
			before := p.waitFor(tt.drawn)
			for _, line := range strings.Split(before, "\n") {
				if tt.drawn.MatchString(line) && len([]rune(line)) >= 80 {
					t.Fatalf("the line fills all 80 columns (it wraps on some terminals): %q", line)
				}
			}
			p.tmux("send-keys", "C-c")
			after := p.waitFor(regexp.MustCompile(`EXIT=\d+`))
			if !strings.Contains(after, "EXIT=130") {
				t.Fatalf("exit status is not 130:\n%s", after)
			}
			if tt.drawn.MatchString(after) || regexp.MustCompile(`\d+% \[|\[=|: WORKING \S+ \d+s`).MatchString(after) {
				t.Fatalf("the line was left on the screen after Ctrl-C:\n%s", after)
			}
			var lines []string
			for _, l := range strings.Split(after, "\n") {
				if strings.TrimSpace(l) != "" {
					lines = append(lines, l)
				}
			}
			// The last line may wrap at 80 columns: join the screen's lines before EXIT=.
			joined := strings.Join(lines[:len(lines)-1], "")
			last := tt.last
			if strings.Contains(last, "{archive}") {
				last = strings.ReplaceAll(last, "{archive}", packedArchive(t, dir))
			}
			if !strings.HasSuffix(joined, last) {
				t.Fatalf("the last line is not %q:\n%s", last, after)
			}
		})
	}
}
