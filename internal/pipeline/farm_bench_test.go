package pipeline

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/dockertest"
	"github.com/runtimebuild/runtimebuild/internal/gittest"
	"github.com/runtimebuild/runtimebuild/internal/progress"
)

// treeDockerfile builds a tree's files into an image: busybox FROM scratch, then the tree and
// a step that reads all of it (no registry needed).
const treeDockerfile = `FROM scratch AS busybox
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
FROM busybox
COPY src /src
RUN find /src -type f | wc -l > /count
`

// BenchmarkAllThroughServeVsLegacyDockerBuild runs `all` (pack, upload, build, wait) against
// serve with its docker builder on a committed tree of 2,300 files, and the legacy builder
// (`docker build`, DOCKER_BUILDKIT=0) on the same checkout, one file changed before each round;
// both builders are warmed first. It reports serve/legacy (issue 18 wants ≤ 0.5).
//
//	go test ./internal/pipeline -run '^$' -bench AllThroughServeVsLegacy -benchtime 3x
func BenchmarkAllThroughServeVsLegacyDockerBuild(b *testing.B) {
	dockertest.Require(b)
	files := gittest.Project()
	files["Dockerfile"] = treeDockerfile
	for i := range 2300 {
		files[fmt.Sprintf("src/d%02d/f%04d.txt", i%40, i)] = strings.Repeat(fmt.Sprintf("line %d of file %d\n", i%17, i), 40+i%60)
	}
	src := gittest.Init(b, b.TempDir(), files)
	if err := os.WriteFile(filepath.Join(src, "busybox"), dockertest.Busybox(b), 0o755); err != nil {
		b.Fatal(err)
	}
	gittest.Git(b, src, "add", "busybox")
	gittest.Git(b, src, "commit", "-q", "-m", "busybox")

	url, prefix, _ := serveDocker(b, context.Background(), "bench-all")
	legacyTag := prefix + "/legacy:latest"
	cfg := load(b, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": b.TempDir(), "RUNTIME_API_URL": url, "RUNTIME_API_KEY": "k",
		"FORCE": "true", "POLL_INTERVAL": "20ms", "ALLOW_SECRETS": "**"})
	run := randomHex(b)
	round := func(i int) (serve, legacy time.Duration) {
		changed := filepath.Join(src, "src", "d00", "f0000.txt")
		if err := os.WriteFile(changed, fmt.Appendf(nil, "changed in round %d of run %s\n", i, run), 0o644); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		var clientLog bytes.Buffer
		log := progress.New(&clientLog, "plain")
		if _, err := upload(context.Background(), cfg, log); err != nil {
			b.Fatal(err)
		}
		serve = time.Since(start)
		if p := os.Getenv("BENCH_LOGS"); p != "" {
			os.WriteFile(p, clientLog.Bytes(), 0o644)
		}
		start = time.Now()
		cmd := exec.Command("docker", "build", "--quiet", "--tag", legacyTag, ".")
		cmd.Dir, cmd.Env = src, append(os.Environ(), "DOCKER_BUILDKIT=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("legacy docker build: %v: %s", err, out)
		}
		return serve, time.Since(start)
	}
	round(-1) // warm both
	var serve, legacy time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, l := round(i)
		serve += s
		legacy += l
	}
	b.StopTimer()
	b.ReportMetric(serve.Seconds()/float64(b.N), "serve-all-s/op")
	b.ReportMetric(legacy.Seconds()/float64(b.N), "legacy-s/op")
	b.ReportMetric(serve.Seconds()/legacy.Seconds(), "serve/legacy")
}

func randomHex(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
