package server_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runtimebuild/runtimebuild/internal/buildkit"
	"github.com/runtimebuild/runtimebuild/internal/dockertest"
	"github.com/runtimebuild/runtimebuild/internal/records"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

func openStore(t *testing.T, dir string) *records.Store {
	t.Helper()
	st, err := records.Open(dir, records.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestAStoredBuildIsAnsweredAfterARestartAndAnUnendedOneEndsSayingServeRestarted(t *testing.T) {
	state := t.TempDir()
	st := openStore(t, state)
	first := start(t, server.Options{Builder: server.CheckBuilder{}, Store: st})
	id, status, err := first.buildID(t, dockertest.ContextArchive(t, "FROM scratch\nCOPY busybox /busybox\n", nil), "localhost/runtime/app:1")
	if err != nil || status.Status != runtimeapi.Success {
		t.Fatalf("the build before the restart: %+v %v", status, err)
	}
	// A build the dead serve was running: its record says WORKING.
	if err := st.Put(records.Record{ID: "was-running", Status: runtimeapi.Working, Queued: time.Now()}); err != nil {
		t.Fatal(err)
	}
	first.srv.Close()
	st.Close()

	second := start(t, server.Options{Builder: server.CheckBuilder{}, Store: openStore(t, state)})
	got, err := second.client.BuildStatus(t.Context(), id)
	if err != nil || got.Status != runtimeapi.Success {
		t.Fatalf("the earlier build after the restart: %+v %v", got, err)
	}
	if logs := second.buildLogs(t, id); !strings.Contains(logs, "nothing was built") {
		t.Fatalf("the earlier build's logs after the restart: %q", logs)
	}
	got, err = second.client.BuildStatus(t.Context(), "was-running")
	if err != nil || got.Status != runtimeapi.InternalError || !strings.Contains(got.Error, "serve restarted") {
		t.Fatalf("the build that ran when serve died: %+v %v; want INTERNAL_ERROR saying serve restarted", got, err)
	}
}

func TestTheFarmBuildsWithTheBranchsRegistryCacheAndReportsTelemetry(t *testing.T) {
	hosts := dockertest.BuildkitHosts(t, 2)
	farm := &buildkit.Farm{}
	for _, h := range hosts {
		farm.Daemons = append(farm.Daemons, buildkit.Daemon{Host: h})
	}
	repo := dockertest.Registry(t) + "/farm/served"
	l := start(t, server.Options{Builder: &server.BuildkitBuilder{Farm: farm, Cache: buildkit.CacheMax}, RegistryPrefix: dockertest.Registry(t) + "/farm"})
	sha := randomHex(20)
	archive := fixtureArchive(t, multiStage)
	// The tags a client on branch feature/x sends: the branch is what serve names the cache after.
	_, st, err := l.submit(t, archive, targetImage(repo, sha, "app"), "app", sha[:7]+"-python-app", sha+"-python-app", "feature-x-python-app")
	if err != nil || st.Status != runtimeapi.Success {
		t.Fatalf("%+v %v", st, err)
	}
	tm := st.Telemetry
	if tm == nil || tm.StepsTotal < 4 || tm.ExportSeconds <= 0 || tm.CacheExportSeconds <= 0 || !strings.HasPrefix(st.Digest, "sha256:") {
		t.Fatalf("status %+v telemetry %+v: want the steps counted, export and cache export timed, and the digest", st, tm)
	}
	ref, _ := name.ParseReference(repo + ":buildcache-app-feature-x")
	if _, err := remote.Head(ref); err != nil {
		t.Fatalf("no cache under the branch's tag: %v", err)
	}
}

func TestTheArchivesTimeIsTheImagesSourceDate(t *testing.T) {
	host := dockertest.BuildkitHosts(t, 1)[0]
	reg := dockertest.Registry(t)
	l := start(t, server.Options{Builder: &server.BuildkitBuilder{Daemon: buildkit.Daemon{Host: host}}, RegistryPrefix: reg + "/farm"})
	commit := time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC) // the time the client packs every member with
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range map[string]string{"Dockerfile": "FROM scratch\nCOPY hello.txt /\n", "hello.txt": randomHex(8)} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: commit, Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	archive := filepath.Join(t.TempDir(), "ctx.tar.gz")
	if err := os.WriteFile(archive, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	image := reg + "/farm/dated:" + randomHex(4)
	if _, st, err := l.submit(t, archive, image, ""); err != nil || st.Status != runtimeapi.Success {
		t.Fatalf("%+v %v", st, err)
	}
	ref, _ := name.ParseReference(image)
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	if !cfg.Created.Time.Equal(commit) {
		t.Fatalf("the image was created %s, want the archive's time %s", cfg.Created, commit)
	}
	h, _ := fileIn(t, img, "hello.txt")
	if h.ModTime.After(commit) {
		t.Fatalf("hello.txt's time in the layer is %s, after SOURCE_DATE_EPOCH %s", h.ModTime, commit)
	}
}

func TestSERVE_PLATFORMSPushesAnIndexUnderEveryName(t *testing.T) {
	host := dockertest.BuildkitHosts(t, 1)[0]
	reg := dockertest.Registry(t)
	l := start(t, server.Options{Builder: &server.BuildkitBuilder{Daemon: buildkit.Daemon{Host: host}, Platforms: []string{"linux/amd64", "linux/arm64"}}, RegistryPrefix: reg + "/farm"})
	image := reg + "/farm/multi:" + randomHex(4)
	archive := dockertest.ContextArchive(t, "FROM scratch\nCOPY busybox /busybox\n", nil)
	_, st, err := l.submit(t, archive, image, "", "also")
	if err != nil || st.Status != runtimeapi.Success {
		t.Fatalf("%+v %v", st, err)
	}
	for _, n := range []string{image, image[:strings.LastIndex(image, ":")] + ":also"} {
		ref, _ := name.ParseReference(n)
		idx, err := remote.Index(ref)
		if err != nil {
			t.Fatalf("%s is no index: %v", n, err)
		}
		m, _ := idx.IndexManifest()
		if d, _ := idx.Digest(); len(m.Manifests) != 2 || d.String() != st.Digest {
			t.Fatalf("%s: %d manifests, digest %s; want 2 and the status's %s", n, len(m.Manifests), d, st.Digest)
		}
	}
}
