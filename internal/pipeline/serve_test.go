package pipeline

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// untilStopped builds until the server stops it.
type untilStopped struct{ started chan struct{} }

func (u untilStopped) Build(ctx context.Context, job *server.Job, _ io.Writer) (string, error) {
	close(u.started)
	<-ctx.Done()
	return "", ctx.Err()
}

func (untilStopped) ImageExists(context.Context, string) (bool, error) { return false, nil }

func TestCtrlCCancelsTheBuildsAndReleasesThePort(t *testing.T) {
	cfg := load(t, map[string]string{"SERVE_ADDR": "127.0.0.1:0", "RUNTIME_API_KEY": "k"})
	var logs bytes.Buffer // progress.Log serialises the writes; read only once serve has returned
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	builder := untilStopped{started: make(chan struct{})}
	client, listening, done := startServe(t, func(ready func(string)) error {
		return serve(ctx, cfg.Serve, progress.New(&logs, "plain"), builder, ready)
	})
	archive, _ := makeContextArchive(t)
	id, err := client.SubmitBuild(ctx, runtimeapi.BuildRequest{Archive: archive, TargetImage: "localhost/runtime/app:1"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-builder.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the build did not start within 10s")
	}

	cancel() // Ctrl-C
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10s of Ctrl-C")
	}
	if want := "build " + id + ": CANCELLED: the server stopped during the build"; !strings.Contains(logs.String(), want) {
		t.Fatalf("no %q in the server's log:\n%s", want, logs.String())
	}
	ln, err := net.Listen("tcp", listening)
	if err != nil {
		t.Fatalf("the port is still taken after serve ended: %v", err)
	}
	ln.Close()
}

func TestServeWithoutAKeyOrAnEngineSaysWhatToSet(t *testing.T) {
	cfg := load(t, map[string]string{"SERVE_ADDR": "127.0.0.1:0", "SERVE_BUILDER": "check"})
	err := Serve(context.Background(), cfg.Serve, progress.New(io.Discard, "quiet"), nil)
	if err == nil || !strings.Contains(err.Error(), "RUNTIME_API_KEY") {
		t.Fatalf("no key: %v", err)
	}
	cfg = load(t, map[string]string{"SERVE_ADDR": "127.0.0.1:0", "RUNTIME_API_KEY": "k", "DOCKER_HOST": "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")})
	err = Serve(context.Background(), cfg.Serve, progress.New(io.Discard, "quiet"), nil)
	if err == nil || !strings.Contains(err.Error(), "no Docker engine answers") || !strings.Contains(err.Error(), "SERVE_BUILDER=check") {
		t.Fatalf("no engine: %v", err)
	}
	cfg = load(t, map[string]string{"SERVE_ADDR": "127.0.0.1:0", "RUNTIME_API_KEY": "k", "SERVE_BUILDER": "buildkit", "BUILDKIT_HOST": "unix://" + filepath.Join(t.TempDir(), "no-buildkitd.sock")})
	err = Serve(context.Background(), cfg.Serve, progress.New(io.Discard, "quiet"), nil)
	if err == nil || !strings.Contains(err.Error(), "BUILDKIT_HOST=unix://") || !strings.Contains(err.Error(), "BuildKit does not answer") {
		t.Fatalf("no buildkitd: %v", err)
	}
}

// makeContextArchive packs a one-stage build context and returns its path and sha256.
func makeContextArchive(t *testing.T) (string, string) {
	t.Helper()
	a, err := buildctx.Write(context.Background(), t.TempDir(), "ctx.tar.gz", []buildctx.Entry{
		{Name: "Dockerfile", Type: tar.TypeReg, Mode: 0o644, Data: []byte("FROM scratch\n")},
	}, time.Unix(0, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	return a.Path, a.SHA256
}

func TestSERVE_BUILDERBuildkitNeedsBUILDKIT_HOSTAndWholeTLSPairs(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SERVE_BUILDER": "buildkit"}, "BUILDKIT_HOST"},
		{map[string]string{"SERVE_BUILDER": "buildkit", "BUILDKIT_HOST": "tcp://bk:1234", "BUILDKIT_TLS_CERT": "c.pem"}, "BUILDKIT_TLS_CERT/BUILDKIT_TLS_KEY"},
		{map[string]string{"SERVE_BUILDER": "kaniko"}, "SERVE_BUILDER"},
	}
	for _, tt := range tests {
		_, err := config.Load(func(k string) string { return tt.env[k] })
		if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want a usage error naming %s", tt.env, err, tt.want)
		}
	}
	cfg := load(t, map[string]string{"SERVE_BUILDER": "buildkit", "BUILDKIT_HOST": "tcp://bk:1234", "BUILDKIT_TLS_CA_CERT": "ca.pem", "BUILDKIT_TLS_CERT": "c.pem", "BUILDKIT_TLS_KEY": "k.pem"})
	if cfg.Serve.BuildkitHost != "tcp://bk:1234" || cfg.Serve.BuildkitTLSCACert != "ca.pem" || cfg.Serve.BuildkitTLSCert != "c.pem" || cfg.Serve.BuildkitTLSKey != "k.pem" {
		t.Fatalf("%+v", cfg)
	}
}

// startServe runs a serve function in the background until it listens, and returns a client of
// it (key "k"), the address, and the channel that gets serve's end.
func startServe(t *testing.T, run func(ready func(addr string)) error) (*runtimeapi.Client, string, <-chan error) {
	t.Helper()
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(func(a string) { addr <- a }) }()
	var listening string
	select {
	case listening = <-addr:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	client, err := runtimeapi.New("http://"+listening, "k", runtimeapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return client, listening, done
}
