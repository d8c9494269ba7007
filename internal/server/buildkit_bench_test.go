package server_test

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/dockertest"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// slowUnneeded is a context whose target "app" does not need the stage that sleeps 10 s; NONCE
// keeps each measured build from the builders' caches (the busybox stage is warmed first).
const slowUnneeded = `FROM scratch AS busybox
LABEL runtimebuild.bench=issue10
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]

FROM busybox AS slow
RUN echo NONCE && sleep 10

FROM busybox AS app
RUN echo NONCE > /nonce
COPY tool.sh /usr/local/bin/tool.sh
`

// BenchmarkBuildKitVsLegacyDockerBuild builds the target of slowUnneeded through serve (the
// engine's BuildKit) and with the legacy `docker build --target` of the same context, in the
// same run, and then the same context again with a warm cache. It reports
// buildkit/legacy (expected ≤ 0.5) and warm/first (expected ≤ 0.2).
//
//	go test ./internal/server -run '^$' -bench BuildKitVsLegacy -benchtime 1x
func BenchmarkBuildKitVsLegacyDockerBuild(b *testing.B) {
	l := start(b, server.Options{Builder: engineBuilder(b)})
	files := map[string]string{"tool.sh": "#!/bin/sh\necho tool\n"}
	base := "localhost/runtimebuild-bench/issue10:" + randomHex(4)
	var made []string // every name, so that cleaning up leaves no untagged image behind
	name := func(suffix string) string {
		made = append(made, base+suffix)
		return base + suffix
	}
	b.Cleanup(func() {
		dockertest.RemoveImages(made...)
		// The legacy builder keeps each stage's result (the slow one's too) as an untagged image.
		exec.Command("docker", "image", "prune", "--force", "--filter", "label=runtimebuild.bench=issue10").Run()
	})

	// Warm both builders' busybox stage, so that the measured builds differ only in the stages run.
	warm := dockertest.ContextArchive(b, slowUnneeded, files)
	legacyBuild(b, warm, name("-warm-legacy"))
	if _, st, err := l.submit(b, warm, name("-warm"), "app"); err != nil || st.Status != "SUCCESS" {
		b.Fatalf("warming: %+v %v", st, err)
	}

	var bk, legacy, second time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		archive := dockertest.ContextArchive(b, slowUnneeded, files)
		start := time.Now()
		legacyBuild(b, archive, name(fmt.Sprintf("-%d-legacy", i)))
		legacy += time.Since(start)

		start = time.Now()
		if _, st, err := l.submit(b, archive, name(fmt.Sprintf("-%d", i)), "app"); err != nil || st.Status != "SUCCESS" {
			b.Fatalf("BuildKit: %+v %v", st, err)
		}
		bk += time.Since(start)

		start = time.Now()
		id, st, err := l.submit(b, archive, name(fmt.Sprintf("-%d-again", i)), "app")
		if err != nil || st.Status != "SUCCESS" {
			b.Fatalf("BuildKit, warm: %+v %v", st, err)
		}
		second += time.Since(start)
		if os.Getenv("BENCH_LOGS") != "" {
			os.WriteFile(os.Getenv("BENCH_LOGS"), []byte(l.buildLogs(b, id)), 0o644)
		}
	}
	b.StopTimer()
	b.ReportMetric(legacy.Seconds()/float64(b.N), "legacy-s/op")
	b.ReportMetric(bk.Seconds()/float64(b.N), "buildkit-s/op")
	b.ReportMetric(second.Seconds()/float64(b.N), "warm-s/op")
	b.ReportMetric(bk.Seconds()/legacy.Seconds(), "buildkit/legacy")
	b.ReportMetric(second.Seconds()/bk.Seconds(), "warm/first")
}

// legacyBuild is the reference: the engine's legacy builder, which runs every stage before the target.
func legacyBuild(b *testing.B, archive, image string) {
	b.Helper()
	f, err := os.Open(archive)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("docker", "build", "--quiet", "--target", "app", "--tag", image, "-")
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("legacy docker build: %v: %s", err, out)
	}
}
