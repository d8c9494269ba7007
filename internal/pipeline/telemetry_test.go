package pipeline

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/gittest"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// timedBuilder reports telemetry as serve's BuildKit builders do.
type timedBuilder struct {
	registryOf
	fail bool
}

func (b *timedBuilder) Build(ctx context.Context, job *server.Job, log io.Writer) (string, error) {
	job.Telemetry = &runtimeapi.Telemetry{BuildSeconds: 1.5, ExportSeconds: 0.5, StepsCached: 1, StepsTotal: 3}
	if b.fail {
		return "", errors.New("step 3 failed")
	}
	return b.registryOf.Build(ctx, job, log)
}

func TestTheClientPrintsServesTelemetryOnceAndRecordsItInTheResultFile(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(map[bool]string{false: "a build that succeeds", true: "a build that fails"}[fail], func(t *testing.T) {
			telemetryOnce(t, fail)
		})
	}
}

func telemetryOnce(t *testing.T, fail bool) {
	srv, err := server.New(server.Options{Key: "k", Builder: &timedBuilder{registryOf{images: map[string]bool{}}, fail}, WorkDir: filepath.Join(t.TempDir(), "w"), RegistryPrefix: "registry.test/rt"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	api := httptest.NewServer(srv.Handler())
	t.Cleanup(api.Close)
	src := gittest.Init(t, t.TempDir(), gittest.Project())
	out := t.TempDir()
	cfg := load(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out, "RUNTIME_API_URL": api.URL, "RUNTIME_API_KEY": "k", "POLL_INTERVAL": "20ms"})
	var logs bytes.Buffer
	log := progress.New(&logs, "plain")
	client, err := NewClient(cfg.API, log)
	if err != nil {
		t.Fatal(err)
	}
	packed, err := Pack(context.Background(), cfg.Pack, "", log)
	if err != nil {
		t.Fatal(err)
	}
	built, err := Send(context.Background(), client, packed, cfg.API, cfg.Send, "", log)
	if (err != nil) != fail {
		t.Fatalf("upload: %v", err)
	}
	line := "build " + built.BuildID + ": queued "
	if n := strings.Count(logs.String(), line); n != 1 || !strings.Contains(logs.String(), "build 1.5s, export/push 500ms; 1 of 3 steps cached") {
		t.Fatalf("the telemetry line %q appears %d times, want once:\n%s", line, n, logs.String())
	}
	r, err := result.Read(packed.Archive.Path)
	if err != nil || r.Status != map[bool]string{false: "SUCCESS", true: "FAILURE"}[fail] || r.Telemetry == nil || r.Telemetry.BuildSeconds != 1.5 || r.Telemetry.StepsTotal != 3 || r.Telemetry.QueuedSeconds <= 0 {
		t.Fatalf("result file telemetry %+v, %v", r.Telemetry, err)
	}
}
