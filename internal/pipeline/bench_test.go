package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/benchtest"
	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/gittest"
	"github.com/runtimebuild/runtimebuild/internal/progress"
)

// sourceTree copies real source text (the Go standard library's .go files under 64 KiB, in
// a fixed order) until about size bytes, as a committed checkout.
func sourceTree(t testing.TB, dir string, size int64) {
	files := gittest.Project()
	var total int64
	root := filepath.Join(goroot(t), "src")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || total >= size {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil || len(b) > 64<<10 {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files["src/"+filepath.ToSlash(rel)] = string(b)
		total += int64(len(b))
		return nil
	})
	if err != nil || total < size {
		t.Fatalf("collecting source text: %v (%d bytes)", err, total)
	}
	gittest.Init(t, dir, files)
}

// largeTree writes n incompressible files of size bytes.
func largeTree(t testing.TB, dir string, n, size int) {
	gittest.Write(t, dir, gittest.Project())
	rng := rand.NewChaCha8([32]byte{7})
	for i := 0; i < n; i++ {
		b := make([]byte, size)
		rng.Read(b)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("blob%d.bin", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gittest.Git(t, dir, "init", "-q", "-b", "main")
	gittest.Git(t, dir, "add", "-A")
	gittest.Git(t, dir, "commit", "-q", "-m", "large")
}

// goSourceKeys are the files of Go's sources that hold real private keys (examples); the
// secrets guard finds them, and the benchmark allows them to pack the tree with every other
// file scanned.
const goSourceKeys = "src/crypto/tls/example_test.go"

// BenchmarkPackVsGitArchive packs each tree with Context and with `git archive --format=tar.gz`
// in the same iteration, and reports the time and size ratios and the peak RSS of a separate
// packing process (benchtest). Context packs with the secrets scan on; on the source tree each
// iteration also packs with it off (ALLOW_SECRETS=**), so that both meet the same load.
// Run: go test ./internal/pipeline -run '^$' -bench PackVsGitArchive -benchtime 3x
func BenchmarkPackVsGitArchive(b *testing.B) {
	trees := []struct {
		name       string
		make       func(testing.TB, string)
		compareOff bool
	}{
		{"source-40MB", func(t testing.TB, d string) { sourceTree(t, d, 40<<20) }, true},
		{"large-300MB", func(t testing.TB, d string) { largeTree(t, d, 6, 50<<20) }, false},
	}
	for _, tree := range trees {
		b.Run(tree.name, func(b *testing.B) {
			src := b.TempDir()
			tree.make(b, src)
			out := b.TempDir()
			cfg := load(b, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out, "ALLOW_SECRETS": goSourceKeys})
			off := load(b, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out, "ALLOW_SECRETS": "**"})
			// the least disturbed run of each counts too, on a busy machine
			var ours, oursOff, git time.Duration
			best := [3]time.Duration{1 << 62, 1 << 62, 1 << 62}
			var ourSize, gitSize int64
			pack := func(cfg config.Config, total *time.Duration, best *time.Duration) int64 {
				start := time.Now()
				p, err := Pack(context.Background(), cfg.Pack, "", progress.New(&bytes.Buffer{}, "quiet"))
				if err != nil {
					b.Fatal(err)
				}
				d := time.Since(start)
				*total += d
				*best = min(*best, d)
				return p.Archive.BytesOut
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ourSize = pack(cfg, &ours, &best[0])
				if tree.compareOff {
					pack(off, &oursOff, &best[1])
				}
				start := time.Now()
				ref := filepath.Join(out, "git-archive.tar.gz")
				cmd := exec.Command("git", "-C", src, "archive", "--format=tar.gz", "-o", ref, "HEAD")
				if o, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("git archive: %v %s", err, o)
				}
				d := time.Since(start)
				git += d
				best[2] = min(best[2], d)
				fi, _ := os.Stat(ref)
				gitSize = fi.Size()
			}
			b.StopTimer()
			b.ReportMetric(float64(ours)/float64(git), "time/git-archive")
			b.ReportMetric(float64(best[0])/float64(best[2]), "best-time/git-archive")
			if tree.compareOff {
				b.ReportMetric(float64(oursOff)/float64(git), "no-scan-time/git-archive")
				b.ReportMetric(float64(best[1])/float64(best[2]), "no-scan-best-time/git-archive")
			}
			b.ReportMetric(float64(ourSize)/float64(gitSize), "size/git-archive")
			b.ReportMetric(float64(benchtest.ChildPeakRSS(b, "TestPackerProcess", "SOURCE_DIR="+src, "OUTPUT_DIR="+out))/(1<<20), "peak-RSS-MiB")
		})
	}
}

// TestPackerProcess is the packing child of BenchmarkPackVsGitArchive; it skips in a normal test run.
func TestPackerProcess(t *testing.T) {
	benchtest.InChild(t)
	cfg := load(t, map[string]string{"SOURCE_DIR": os.Getenv("SOURCE_DIR"), "OUTPUT_DIR": os.Getenv("OUTPUT_DIR"), "ALLOW_SECRETS": goSourceKeys})
	if _, err := Pack(context.Background(), cfg.Pack, "", progress.New(&bytes.Buffer{}, "quiet")); err != nil {
		t.Fatal(err)
	}
	benchtest.ReportPeakRSS(t)
}

// goroot asks the go command, since runtime.GOROOT means nothing in a copied binary.
func goroot(t testing.TB) string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return strings.TrimSpace(string(out))
}
