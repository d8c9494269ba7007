package server_test

import (
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
