package server_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/runtimebuild/runtimebuild/internal/buildkit"
	"github.com/runtimebuild/runtimebuild/internal/dockertest"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// The rows of issue 17's table, each now refused or bounded, against the real engine, a real
// buildkitd and a real registry (.ci/run starts all three).

// busyboxFrom is a stage that gives RUN a shell with no registry: the context's static busybox.
const busyboxFrom = "FROM scratch AS busybox\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"

// localOnlyImage builds, with the engine's legacy builder, an image holding /secret.txt under
// a name outside the prefix that no registry has (another team's image on the same engine).
func localOnlyImage(t *testing.T, secret string) string {
	t.Helper()
	ref := "runtimebuild-test/other-team:" + randomHex(6)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	writeTar(t, zw, map[string]string{"Dockerfile": "FROM scratch\nCOPY secret.txt /secret.txt\n", "secret.txt": secret})
	zw.Close()
	dockertest.BuildImage(t, &buf, ref)
	t.Cleanup(func() { dockertest.RemoveImages(ref) })
	return ref
}

// Row 2: an image archive whose manifest names other images is loaded under the requested
// names alone; the images it names are left as they were.
func TestAnImageArchiveIsLoadedUnderTheRequestedNamesOnly(t *testing.T) {
	engine := dockertest.Engine(t)
	victim := dockertest.FixtureImage(t)
	before, err := engine.Inspect(context.Background(), victim)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	other := victim + "-planted"
	t.Cleanup(func() { dockertest.RemoveImages(other) })
	refs := map[name.Reference]v1.Image{}
	for _, n := range []string{victim, other} {
		tag, _ := name.NewTag(n)
		refs[tag] = img
	}
	var saved bytes.Buffer
	zw := gzip.NewWriter(&saved)
	if err := tarball.MultiRefWrite(refs, zw); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	path := filepath.Join(t.TempDir(), "image.tar.gz")
	os.WriteFile(path, saved.Bytes(), 0o644)

	l := start(t, server.Options{Builder: engineBuilder(t)})
	target := uniqueImage(t)
	if _, st, err := l.submit(t, path, target, ""); err != nil || st.Status != runtimeapi.Success {
		t.Fatalf("%+v %v", st, err)
	}
	after, err := engine.Inspect(context.Background(), victim)
	if err != nil || after.ID != before.ID {
		t.Fatalf("%s is now %s (%v), want it left as %s", victim, after.ID, err, before.ID)
	}
	if ok, _ := engine.Exists(context.Background(), other); ok {
		t.Fatalf("the archive's own name %s was given", other)
	}
	want, _ := img.ConfigName()
	if got, err := engine.Inspect(context.Background(), target); err != nil || got.ID != want.String() {
		t.Fatalf("%s is %s (%v), want the archive's image %s", target, got.ID, err, want)
	}
}

// Row 4: FROM, COPY --from and RUN --mount from= an image only the engine holds end in
// FAILURE without its content in the log; SERVE_LOCAL_IMAGES=true is the operator's way back.
func TestImagesOnlyTheEngineHoldsAreNoBase(t *testing.T) {
	secret := "the-other-teams-secret-" + randomHex(4)
	other := localOnlyImage(t, secret)
	dockerfiles := map[string]string{
		"FROM":             "FROM " + other + "\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"cat\", \"/secret.txt\"]\n",
		"COPY --from":      busyboxFrom + "FROM busybox\nCOPY --from=" + other + " /secret.txt /s\nRUN cat /s\n",
		"RUN --mount from": busyboxFrom + "FROM busybox\nRUN --mount=type=bind,from=" + other + ",target=/o cat /o/secret.txt\n",
	}
	l := start(t, server.Options{Builder: engineBuilder(t)})
	for what, df := range dockerfiles {
		t.Run(what, func(t *testing.T) {
			id, st, err := l.submit(t, dockertest.ContextArchive(t, df, nil), uniqueImage(t), "")
			logs := l.buildLogs(t, id)
			if st.Status != runtimeapi.Failure || strings.Contains(logs, secret) || strings.Contains(st.Error, secret) {
				t.Fatalf("%s a local-only image: %+v %v\n%s", what, st, err, logs)
			}
		})
	}
	opted := start(t, server.Options{Builder: engineBuilder(t), LocalImages: true})
	id, st, err := opted.submit(t, dockertest.ContextArchive(t, dockerfiles["FROM"], nil), uniqueImage(t), "")
	if st.Status != runtimeapi.Success || !strings.Contains(opted.buildLogs(t, id), secret) {
		t.Fatalf("with SERVE_LOCAL_IMAGES=true, FROM the engine's image: %+v %v", st, err)
	}
}

// pushFile pushes to the registry an image holding path with body, and returns its name.
func pushFile(t *testing.T, ref, path, body string) {
	t.Helper()
	var buf bytes.Buffer
	writeTar(t, &buf, map[string]string{path: body})
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(ref)
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
}

// Row 4, what still works: a base built by one build (under the prefix, in the engine alone)
// serves the next, and an image from a registry comes from the registry even when the engine
// holds another image under its name.
func TestAPrefixBaseServesTheNextBuildAndRegistryImagesComeFromTheRegistry(t *testing.T) {
	reg := dockertest.Registry(t)
	tool := reg + "/lib/tool:" + randomHex(4)
	pushFile(t, tool, "tool.txt", "from the registry\n")
	planted := localOnlyImage(t, "planted in the engine\n") // holds /secret.txt; re-tag it as tool.txt's name
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	writeTar(t, zw, map[string]string{"Dockerfile": "FROM " + planted + "\nCOPY tool.txt /tool.txt\n", "tool.txt": "planted in the engine\n"})
	zw.Close()
	dockertest.BuildImage(t, &buf, tool)
	t.Cleanup(func() { dockertest.RemoveImages(tool) })

	l := start(t, server.Options{Builder: engineBuilder(t)})
	base := uniqueImage(t)
	if id, st, err := l.submit(t, dockertest.ContextArchive(t, busyboxFrom, nil), base, ""); st.Status != runtimeapi.Success {
		t.Fatalf("the base: %+v %v\n%s", st, err, l.buildLogs(t, id))
	}
	cases := map[string]string{
		"FROM the prefix base, COPY --from the registry": "FROM " + base + "\nCOPY --from=" + tool + " /tool.txt /tool.txt\nRUN cat /tool.txt && echo NONCE\n",
		"FROM scratch, COPY --from the registry":         busyboxFrom + "FROM busybox\nCOPY --from=" + tool + " /tool.txt /tool.txt\nRUN cat /tool.txt && echo NONCE\n",
	}
	for what, df := range cases {
		t.Run(what, func(t *testing.T) {
			id, st, err := l.submit(t, dockertest.ContextArchive(t, df, nil), uniqueImage(t), "")
			logs := l.buildLogs(t, id)
			if st.Status != runtimeapi.Success || !strings.Contains(logs, "from the registry") || strings.Contains(logs, "planted") {
				t.Fatalf("%+v %v\n%s", st, err, logs)
			}
		})
	}
}

// Row 6: ADD from a service on serve's host is refused naming the line; the operator's
// SERVE_ALLOW_PRIVATE_URLS=true lets it through.
func TestADDFromThisHostIsRefused(t *testing.T) {
	secret := "host-secret-" + randomHex(4)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, secret) }))
	defer svc.Close()
	df := busyboxFrom + "FROM busybox\nADD " + svc.URL + "/secret.txt /secret.txt\nRUN cat /secret.txt && echo NONCE\n"
	l := start(t, server.Options{Builder: engineBuilder(t)})
	id, st, err := l.submit(t, dockertest.ContextArchive(t, df, nil), uniqueImage(t), "")
	var failed *runtimeapi.BuildFailedError
	if !errors.As(err, &failed) || !strings.Contains(st.Error, "Dockerfile line 5: ADD "+svc.URL+"/secret.txt reaches 127.0.0.1") || strings.Contains(l.buildLogs(t, id), secret) {
		t.Fatalf("ADD from 127.0.0.1: %+v %v", st, err)
	}
	opted := start(t, server.Options{Builder: engineBuilder(t), AllowPrivateURLs: true})
	id, st, err = opted.submit(t, dockertest.ContextArchive(t, df, nil), uniqueImage(t), "")
	if st.Status != runtimeapi.Success || !strings.Contains(opted.buildLogs(t, id), secret) {
		t.Fatalf("with SERVE_ALLOW_PRIVATE_URLS=true: %+v %v", st, err)
	}
}

// Issue 17, A, B and E: ADD to this host through what the first check could not see (ENV of an
// earlier stage, ONBUILD in the Dockerfile, a heredoc the engine's frontend runs as
// instructions, this machine's own interface address), on both builders.
func TestADDFromThisHostIsRefusedThroughVariablesONBUILDHeredocsAndOwnAddresses(t *testing.T) {
	secret := "host-secret-" + randomHex(4)
	serve := func(l net.Listener) string {
		svc := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, secret) })}
		go svc.Serve(l)
		t.Cleanup(func() { svc.Close() })
		return "http://" + l.Addr().String()
	}
	loop, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	local := serve(loop)
	cases := []struct {
		name, df, refused string
		engineOnly        bool
	}{
		{"ENV of an earlier stage", busyboxFrom + "FROM busybox AS a\nENV U=" + local + "/secret\nFROM a\nADD $U /s\nRUN cat /s && echo NONCE\n", "Dockerfile line 7: ADD " + local + "/secret reaches 127.0.0.1", false},
		{"ONBUILD ADD in the Dockerfile", busyboxFrom + "FROM busybox AS a\nONBUILD ADD " + local + "/secret /s\nFROM a\nRUN cat /s && echo NONCE\n", "Dockerfile line 5: ADD " + local + "/secret reaches 127.0.0.1", false},
		{"a heredoc", busyboxFrom + "FROM busybox\nRUN <<sdir\nADD " + local + "/secret /s \\\nsdir\nRUN cat /s && echo NONCE\n", "Dockerfile line 5: a heredoc", true},
	}
	// An address of this machine's own interfaces, outside the refused ranges (192.0.2.2 on
	// eth0 here), when it has one.
	for _, a := range ownAddresses(t) {
		if a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || !a.Is4() {
			continue
		}
		l, err := net.Listen("tcp", a.String()+":0")
		if err != nil {
			continue
		}
		own := serve(l)
		cases = append(cases, struct {
			name, df, refused string
			engineOnly        bool
		}{"this machine's own address " + a.String(), busyboxFrom + "FROM busybox\nADD " + own + "/secret /s\nRUN cat /s && echo NONCE\n", "Dockerfile line 5: ADD " + own + "/secret reaches " + a.String(), false})
		break
	}
	builders := map[string]func(*testing.T) server.Builder{
		"engine":    func(t *testing.T) server.Builder { return engineBuilder(t) },
		"buildkitd": func(t *testing.T) server.Builder { return daemonBuilder(t) },
	}
	for bname, builder := range builders {
		t.Run(bname, func(t *testing.T) {
			l := start(t, server.Options{Builder: builder(t), RegistryPrefix: dockertest.Registry(t) + "/adv17"})
			for _, c := range cases {
				if c.engineOnly && bname != "engine" {
					continue
				}
				t.Run(c.name, func(t *testing.T) {
					id, st, err := l.submit(t, dockertest.ContextArchive(t, c.df, nil), dockertest.Registry(t)+"/adv17/app-"+randomHex(3)+":1", "")
					var failed *runtimeapi.BuildFailedError
					if !errors.As(err, &failed) || !strings.Contains(st.Error, c.refused) || strings.Contains(l.buildLogs(t, id), secret) {
						t.Fatalf("%+v %v, want refused with %q\n%s", st, err, c.refused, l.buildLogs(t, id))
					}
				})
			}
		})
	}
}

// ownAddresses are this machine's interface addresses.
func ownAddresses(t *testing.T) []netip.Addr {
	nets, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, n := range nets {
		if p, err := netip.ParsePrefix(n.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}

// Row 9: two repositories never share a cache mount, whatever its id; one repository keeps its own.
func TestCacheMountsAreKeptPerRepository(t *testing.T) {
	builders := map[string]struct {
		builder func(*testing.T) server.Builder
		prefix  func(*testing.T) string
	}{
		"engine":    {func(t *testing.T) server.Builder { return engineBuilder(t) }, func(*testing.T) string { return "localhost/runtime" }},
		"buildkitd": {func(t *testing.T) server.Builder { return daemonBuilder(t) }, func(t *testing.T) string { return dockertest.Registry(t) + "/cache-test" }},
	}
	for name, b := range builders {
		t.Run(name, func(t *testing.T) {
			prefix := b.prefix(t)
			l := start(t, server.Options{Builder: b.builder(t), RegistryPrefix: prefix})
			planted := "planted-" + randomHex(4)
			plant := busyboxFrom + "FROM busybox\nRUN --mount=type=cache,target=/home/agent/.cache,id=shared echo NONCE && echo " + planted + " > /home/agent/.cache/p\n"
			read := busyboxFrom + "FROM busybox\nRUN --mount=type=cache,target=/home/agent/.cache,id=shared echo NONCE && cat /home/agent/.cache/p || echo nothing planted\n"
			repoA, repoB := prefix+"/a-"+randomHex(3), prefix+"/b-"+randomHex(3)
			t.Cleanup(func() { dockertest.RemoveImages(repoA+":1", repoA+":2", repoA+":3", repoB+":1", repoB+":2") })
			if id, st, err := l.submit(t, dockertest.ContextArchive(t, plant, nil), repoA+":1", ""); st.Status != runtimeapi.Success {
				t.Fatalf("build A: %+v %v\n%s", st, err, l.buildLogs(t, id))
			}
			id, st, err := l.submit(t, dockertest.ContextArchive(t, read, nil), repoB+":1", "")
			if logs := l.buildLogs(t, id); st.Status != runtimeapi.Success || strings.Contains(logs, planted) || !strings.Contains(logs, "nothing planted") {
				t.Fatalf("build B of another repository read A's cache mount: %+v %v\n%s", st, err, logs)
			}
			id, st, err = l.submit(t, dockertest.ContextArchive(t, read, nil), repoA+":2", "")
			if logs := l.buildLogs(t, id); st.Status != runtimeapi.Success || !strings.Contains(logs, planted) {
				t.Fatalf("a second build of A does not find its own cache mount: %+v %v\n%s", st, err, logs)
			}
			// Issue 17, C(4): a step that copies its cache mount into the image, identical in A and
			// B, is never taken from A's step cache for B (BuildKit's key leaves the mount id out).
			copyOut := busyboxFrom + "FROM busybox\nRUN --mount=type=cache,target=/home/agent/.cache,id=shared cat /home/agent/.cache/p > /leak || echo nothing planted > /leak\nRUN echo NONCE && cat /leak\n"
			if id, st, err := l.submit(t, dockertest.ContextArchive(t, copyOut, nil), repoA+":3", ""); st.Status != runtimeapi.Success || !strings.Contains(l.buildLogs(t, id), planted) {
				t.Fatalf("build A copying its own cache mount: %+v %v\n%s", st, err, l.buildLogs(t, id))
			}
			id, st, err = l.submit(t, dockertest.ContextArchive(t, copyOut, nil), repoB+":2", "")
			if logs := l.buildLogs(t, id); st.Status != runtimeapi.Success || strings.Contains(logs, planted) || !strings.Contains(logs, "nothing planted") {
				t.Fatalf("build B took A's step, with A's cache mount in it, from the step cache: %+v %v\n%s", st, err, logs)
			}
		})
	}
}

// Row 10: a running build is cancelled through POST /build/cancel: CANCELLED, its process gone.
func TestCancelStopsARealBuild(t *testing.T) {
	l := start(t, server.Options{Builder: engineBuilder(t)})
	archive, marker := dockertest.SleepingContext(t)
	resp, out := l.post(t, archive, map[string]string{"target_image": uniqueImage(t)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /build: %d %v", resp.StatusCode, out)
	}
	if !dockertest.WaitFor(2*time.Minute, func() bool { return len(dockertest.Processes(marker)) > 0 }) {
		t.Fatalf("the step %q never ran:\n%s", marker, l.buildLogs(t, out["build_id"]))
	}
	if code, answer := l.cancel(t, out["build_id"]); code != http.StatusOK || answer.Status != runtimeapi.Cancelled {
		t.Fatalf("cancel: %d %+v", code, answer)
	}
	if !dockertest.WaitFor(30*time.Second, func() bool { return len(dockertest.Processes(marker)) == 0 }) {
		t.Fatalf("the step still runs after cancel: %v", dockertest.Processes(marker))
	}
}

// writeTar writes files as a tar stream to w, in name order.
func writeTar(t *testing.T, w io.Writer, files map[string]string) {
	t.Helper()
	tw := tar.NewWriter(w)
	for _, n := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, files[n])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// Row 11: builds that give a name a new image leave no dangling image behind, and the
// BuildKit cache serve's builds made is kept under SERVE_CACHE_MAX while what others made stays.
func TestTheDockerBuilderLeavesNoDanglingImagesAndBoundsOnlyItsOwnCache(t *testing.T) {
	ctx := context.Background()
	engine := dockertest.Engine(t)
	c, err := buildkit.Engine(ctx, engine)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Another user of the engine builds first: its cache records are not serve's.
	otherImage := "runtimebuild-test/other-user:" + randomHex(4)
	t.Cleanup(func() { dockertest.RemoveImages(otherImage) })
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY f /f\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "f"), []byte(randomHex(8)), 0o644)
	if _, err := buildkit.Solve(ctx, c, buildkit.Build{ContextDir: dir, Export: buildkit.MobyExport([]string{otherImage})}, io.Discard); err != nil {
		t.Fatal(err)
	}
	others, err := c.DiskUsage(ctx)
	if err != nil || len(others) == 0 {
		t.Fatalf("the engine's BuildKit lists %d records (%v)", len(others), err)
	}

	l := start(t, server.Options{Builder: &server.DockerBuilder{Engine: engine, CacheMax: 1}})
	target := uniqueImage(t)
	var ids, pruned []string
	for i := 0; i < 3; i++ {
		archive := dockertest.ContextArchive(t, busyboxFrom+"FROM busybox\nRUN echo NONCE > /n\n", nil)
		id, st, err := l.submit(t, archive, target, "")
		logs := l.buildLogs(t, id)
		if st.Status != runtimeapi.Success {
			t.Fatalf("build %d: %+v %v\n%s", i, st, err, logs)
		}
		for _, line := range strings.Split(logs, "\n") {
			if rest, ok := strings.CutPrefix(line, "pruned cache record "); ok {
				pruned = append(pruned, strings.Fields(rest)[0])
			}
		}
		img, err := engine.Inspect(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, img.ID)
	}
	for _, id := range ids[:2] {
		if ok, _ := engine.Exists(ctx, id); ok {
			t.Errorf("the image %s, whose name a later build took, is still in the engine", id)
		}
	}
	before := map[string]string{}
	for _, r := range others {
		before[r.ID] = r.Description
	}
	for _, id := range pruned {
		if desc, ok := before[id]; ok {
			t.Errorf("the cache record %s (%s), made before serve, was pruned", id, desc)
		}
	}
	if len(pruned) == 0 {
		t.Error("with SERVE_CACHE_MAX of 1 byte, no build pruned anything")
	}
}

// A base from a registry whose ONBUILD triggers would run in the build (an ADD from this host,
// a COPY from another team's image) is refused before the build starts, naming its line.
func TestABaseWithONBUILDTriggersIsRefused(t *testing.T) {
	reg := dockertest.Registry(t)
	base := reg + "/lib/onbuild:" + randomHex(4)
	img, _ := random.Image(256, 1)
	cfg, _ := img.ConfigFile()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.OnBuild = []string{"ADD http://127.0.0.1:1/secret /secret"}
	img, _ = mutate.ConfigFile(img, cfg)
	tag, _ := name.NewTag(base)
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	l := start(t, server.Options{Builder: engineBuilder(t)})
	_, st, _ := l.submit(t, dockertest.ContextArchive(t, "FROM scratch AS x\nFROM "+base+"\nLABEL a=b\n", nil), uniqueImage(t), "")
	if st.Status != runtimeapi.Failure || !strings.Contains(st.Error, "Dockerfile line 2: FROM "+base+": the image has ONBUILD triggers (ADD http://127.0.0.1:1/secret /secret)") {
		t.Fatalf("FROM a base with ONBUILD: %+v", st)
	}
}
