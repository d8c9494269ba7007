package buildkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/buildkit/client"

	"github.com/runtimebuild/runtimebuild/internal/dockertest"
)

// busyboxDockerfile installs busybox FROM scratch, then runs a step unique to the test (NONCE):
// no daemon has its result in its local cache.
const busyboxDockerfile = `FROM scratch AS busybox
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
FROM busybox AS app
RUN echo NONCE > /nonce
COPY hello.txt /hello.txt
`

// contextDir writes a build context: the Dockerfile (NONCE replaced by nonce), busybox, hello.txt.
func contextDir(t testing.TB, dockerfile, nonce string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{"Dockerfile": []byte(strings.ReplaceAll(dockerfile, "NONCE", nonce)), "hello.txt": []byte("hello\n")}
	if strings.Contains(dockerfile, "busybox") {
		files["busybox"] = dockertest.Busybox(t)
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func nonce() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// solveOn builds b on the daemon at host.
func solveOn(t testing.TB, host string, b Build) (Report, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var log strings.Builder
	rep, err := (&Farm{Daemons: []Daemon{{Host: host}}}).Solve(ctx, "any", b, &log)
	if err != nil {
		t.Fatalf("building on %s: %v\n%s", host, err, log.String())
	}
	return rep, log.String()
}

func TestAFreshDaemonTakesEveryStepFromTheRegistryCache(t *testing.T) {
	hosts := dockertest.BuildkitHosts(t, 2)
	repo := dockertest.Registry(t) + "/farm/cache"
	n := nonce()
	dir := contextDir(t, busyboxDockerfile, n)
	imports, exports := RegistryCache(repo, "app", "feature-"+n, CacheMax)

	first, log := solveOn(t, hosts[0], Build{ContextDir: dir, Target: "app", Export: PushExport([]string{repo + ":" + n + "-a"}), CacheImports: imports, CacheExports: exports})
	// The busybox stage may come from the daemon's local cache (other tests build it); the app
	// stage is this test's own.
	if first.Steps != 4 || first.CachedSteps > 2 || first.CacheExport <= 0 {
		t.Fatalf("the first build: %+v, want the app stage's steps run and the cache exported\n%s", first, log)
	}
	// The second daemon has never built this context: a branch of its own, it finds the
	// cache under the first branch only because both export and import use that name here.
	second, log := solveOn(t, hosts[1], Build{ContextDir: contextDir(t, busyboxDockerfile, n), Target: "app", Export: PushExport([]string{repo + ":" + n + "-b"}), CacheImports: imports})
	if second.Steps != 4 || second.CachedSteps != 4 || !strings.Contains(log, "CACHED") {
		t.Fatalf("the second build on a fresh daemon: %+v, want its 4 steps CACHED\n%s", second, log)
	}
	if second.Digest != first.Digest {
		t.Fatalf("the cached build made %s, the first %s", second.Digest, first.Digest)
	}
}

func TestOneContextGivesOneDigestOnTwoDaemonsWithoutACache(t *testing.T) {
	hosts := dockertest.BuildkitHosts(t, 2)
	repo := dockertest.Registry(t) + "/farm/repro"
	n := nonce()
	epoch := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var digests []string
	for i, host := range hosts {
		dir := contextDir(t, busyboxDockerfile, n)
		// The files' own times differ between the two checkouts; the epoch rewrites them.
		mtime := time.Now().Add(time.Duration(i) * time.Hour)
		os.Chtimes(filepath.Join(dir, "hello.txt"), mtime, mtime)
		tag := repo + ":" + n + "-" + string(rune('a'+i))
		rep, log := solveOn(t, host, Build{ContextDir: dir, Export: PushExport([]string{tag}), SourceDate: epoch})
		if rep.Digest == "" || rep.Steps-rep.CachedSteps < 2 {
			t.Fatalf("build on %s: %+v, want a digest and the app stage's steps run\n%s", host, rep, log)
		}
		ref, _ := name.ParseReference(tag)
		img, err := remote.Image(ref)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := img.ConfigFile()
		if !cfg.Created.Time.Equal(epoch) {
			t.Fatalf("the image was created %s, want SOURCE_DATE_EPOCH %s", cfg.Created, epoch)
		}
		digests = append(digests, rep.Digest)
	}
	if digests[0] != digests[1] {
		t.Fatalf("one context gave %s on %s and %s on %s", digests[0], hosts[0], digests[1], hosts[1])
	}
}

func TestSeveralPlatformsPushOneIndex(t *testing.T) {
	hosts := dockertest.BuildkitHosts(t, 1)
	tag := dockertest.Registry(t) + "/farm/platforms:" + nonce()
	dir := contextDir(t, "FROM scratch\nCOPY hello.txt /hello.txt\n", "")
	rep, log := solveOn(t, hosts[0], Build{ContextDir: dir, Export: PushExport([]string{tag}), Platforms: []string{"linux/amd64", "linux/arm64"}})
	ref, _ := name.ParseReference(tag)
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatalf("%s is no index: %v\n%s", tag, err, log)
	}
	m, _ := idx.IndexManifest()
	var platforms []string
	for _, d := range m.Manifests {
		if d.Platform != nil {
			platforms = append(platforms, d.Platform.OS+"/"+d.Platform.Architecture)
		}
	}
	slices.Sort(platforms)
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Fatalf("the index holds %v", platforms)
	}
	if d, _ := idx.Digest(); d.String() != rep.Digest {
		t.Fatalf("the report says %s, the registry %s", rep.Digest, d)
	}
}

func TestASilentDaemonIsSkippedAndADaemonDyingBeforeTheFirstStepIsReplaced(t *testing.T) {
	live := dockertest.BuildkitHosts(t, 1)[0]
	doomed, proc := dockertest.Buildkitd(t)
	silent := "unix://" + filepath.Join(t.TempDir(), "nobody.sock")
	var warnings []string
	f := &Farm{Daemons: []Daemon{{Host: silent}, {Host: doomed}, {Host: live}}, Warnf: func(format string, args ...any) {
		warnings = append(warnings, format)
	}}
	// A repository that tries the silent daemon, then the doomed one, then the live one.
	key := ""
	for i := 0; key == "" && i < 10000; i++ {
		k := "127.0.0.1:5000/farm/app" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + hex.EncodeToString([]byte{byte(i >> 8), byte(i)})
		if o := f.Order(k); o[0].Host == silent && o[1].Host == doomed {
			key = k
		}
	}
	if key == "" {
		t.Fatal("no key orders the daemons silent, doomed, live")
	}
	f.beforeSolve = func(d Daemon) {
		if d.Host == doomed {
			proc.Kill()
			proc.Wait()
		}
	}
	var log strings.Builder
	dir := contextDir(t, "FROM scratch\nCOPY hello.txt /hello.txt\n", "")
	rep, err := f.Solve(context.Background(), key, Build{ContextDir: dir, Export: client.ExportEntry{Type: client.ExporterImage}}, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if rep.Daemon != live || len(warnings) != 2 || !strings.Contains(warnings[0], "does not answer") || !strings.Contains(warnings[1], "went away") {
		t.Fatalf("built on %s with warnings %q; want the live daemon after skipping one and replacing one\n%s", rep.Daemon, warnings, log.String())
	}

	// With every daemon gone, the build fails naming them.
	f = &Farm{Daemons: []Daemon{{Host: silent}}}
	if _, err := f.Solve(context.Background(), key, Build{ContextDir: dir}, &log); err == nil || !strings.Contains(err.Error(), silent) {
		t.Fatalf("no daemon: %v", err)
	}
}
