package buildkit

import (
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/dockertest"
)

// slowStep is a context whose one slow step (8 s) is unique to the round (NONCE).
const slowStep = `FROM scratch AS busybox
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
FROM busybox
RUN echo NONCE && sleep 8
COPY hello.txt /hello.txt
`

// BenchmarkRegistryCacheOnAFreshDaemon builds a context with an 8 s step on one daemon,
// exporting the registry cache, then the same context on a daemon started empty for the round,
// importing it. It reports fresh/cold (expected ≤ 0.3: every step comes from the cache).
//
//	go test ./internal/buildkit -run '^$' -bench RegistryCacheOnAFreshDaemon -benchtime 1x
func BenchmarkRegistryCacheOnAFreshDaemon(b *testing.B) {
	warmHost := dockertest.BuildkitHosts(b, 1)[0]
	repo := dockertest.Registry(b) + "/farm/bench"
	var cold, fresh time.Duration
	for i := 0; i < b.N; i++ {
		freshHost, _ := dockertest.Buildkitd(b) // empty: nothing but the registry cache helps it
		n := nonce()
		imports, exports := RegistryCache(repo, "", "bench-"+n, CacheMax)
		start := time.Now()
		solveOn(b, warmHost, Build{ContextDir: contextDir(b, slowStep, n), Export: PushExport([]string{repo + ":" + n + "-cold"}), CacheImports: imports, CacheExports: exports})
		cold += time.Since(start)
		start = time.Now()
		rep, log := solveOn(b, freshHost, Build{ContextDir: contextDir(b, slowStep, n), Export: PushExport([]string{repo + ":" + n + "-fresh"}), CacheImports: imports})
		fresh += time.Since(start)
		if rep.CachedSteps != rep.Steps {
			b.Fatalf("the fresh daemon ran steps: %+v\n%s", rep, log)
		}
	}
	b.ReportMetric(cold.Seconds()/float64(b.N), "cold-s/op")
	b.ReportMetric(fresh.Seconds()/float64(b.N), "fresh-cached-s/op")
	b.ReportMetric(fresh.Seconds()/cold.Seconds(), "fresh/cold")
}
