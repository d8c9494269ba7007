package server_test

import (
	"context"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runtimebuild/runtimebuild/internal/buildkit"
	"github.com/runtimebuild/runtimebuild/internal/dockertest"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// privateRegistry is a registry on loopback that answers only with user:secret, counting the
// requests that carried those credentials; this machine's docker config (DOCKER_CONFIG) holds
// them, as a host logged in to a team's registry does.
func privateRegistry(t *testing.T) (host string, credentialed *atomic.Int64) {
	t.Helper()
	credentialed = &atomic.Int64{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); ok && user == "user" && pass == "secret" {
			credentialed.Add(1)
			reg.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="private"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	host = strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("user:secret"))
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600)
	// docker/cli reads DOCKER_CONFIG once per process: with t.Setenv, every run after the
	// process's first read (-count=3, or after another buildkit test) handed BuildKit the first
	// run's config, without this registry, and the prefix's build got 401 on its base.
	old := config.Dir()
	config.SetDir(dir)
	t.Cleanup(func() { config.SetDir(old) })
	return host, credentialed
}

// Row 5: the buildkit builder hands serve's registry credentials to the prefix's registry
// alone: a private base on another registry is read anonymously (and refused), while the same
// registry as the prefix gets them.
func TestTheBuildkitBuilderUsesCredentialsOnlyForThePrefixsRegistry(t *testing.T) {
	host, credentialed := privateRegistry(t)
	base := host + "/private/base:1"
	img, _ := random.Image(256, 1)
	cfg, _ := img.ConfigFile()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH // a base BuildKit can export on
	img, _ = mutate.ConfigFile(img, cfg)
	tag, _ := name.NewTag(base)
	if err := remote.Write(tag, img, remote.WithAuth(&authn.Basic{Username: "user", Password: "secret"})); err != nil {
		t.Fatal(err)
	}
	credentialed.Store(0)
	df := "FROM " + base + "\nLABEL from=private\n"

	elsewhere := start(t, server.Options{Builder: daemonBuilder(t), RegistryPrefix: dockertest.Registry(t) + "/creds"})
	id, st, err := elsewhere.submit(t, dockertest.ContextArchive(t, df, nil), dockertest.Registry(t)+"/creds/app:"+randomHex(4), "")
	if st.Status != runtimeapi.Failure || credentialed.Load() != 0 {
		t.Fatalf("FROM a private image on a registry other than the prefix's: %+v %v, %d requests with serve's credentials\n%s", st, err, credentialed.Load(), elsewhere.buildLogs(t, id))
	}

	own := start(t, server.Options{Builder: daemonBuilder(t), RegistryPrefix: host + "/private"})
	id, st, err = own.submit(t, dockertest.ContextArchive(t, df, nil), host+"/private/app:"+randomHex(4), "")
	if st.Status != runtimeapi.Success || credentialed.Load() == 0 {
		t.Fatalf("the prefix's own registry: %+v %v, %d requests with serve's credentials\n%s", st, err, credentialed.Load(), own.buildLogs(t, id))
	}
}

// Row 8: a buildkitd whose steps share this machine's network (the tests' own: no CNI, on this
// host) is named, so that serve warns at start; RUN steps there reach loopback.
func TestABuildkitdOnThisHostsNetworkIsNamed(t *testing.T) {
	host := dockertest.BuildkitHost(t)
	b := &server.BuildkitBuilder{Daemon: buildkit.Daemon{Host: host}}
	if got := b.SharedNetworks(context.Background()); len(got) != 1 || got[0] != host {
		t.Fatalf("SharedNetworks = %v, want [%s]", got, host)
	}
	gone := &server.BuildkitBuilder{Daemon: buildkit.Daemon{Host: "unix://" + filepath.Join(t.TempDir(), "none.sock")}}
	if got := gone.SharedNetworks(context.Background()); len(got) != 0 {
		t.Fatalf("a daemon that does not answer: %v", got)
	}
}
