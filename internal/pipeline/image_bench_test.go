package pipeline

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/benchtest"
	"github.com/runtimebuild/runtimebuild/internal/progress"
)

// acceptingAPI is a Runtime API that reads every upload to its end and reports the build done
// at once: the benchmark measures export and upload, not a build.
func acceptingAPI() *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /build", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"build_id":"bench"}`)
	})
	mux.HandleFunc("GET /build_status", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"SUCCESS"}`)
	})
	return httptest.NewServer(mux)
}

// BenchmarkImageFromRegistry exports a 1 GiB image of incompressible layers from an in-memory
// registry on 127.0.0.1 and uploads it (IMAGE_SOURCE=registry), and, where a Docker engine
// answers, times `docker save ref | gzip` of the same image (pulled into the engine first) in
// the same iteration. It reports the time ratio and the peak RSS of a separate exporting
// process. Run:
//
//	go test ./internal/pipeline -run '^$' -bench ImageFromRegistry -benchtime 2x -timeout 30m
func BenchmarkImageFromRegistry(b *testing.B) {
	const layers = 4
	ref, _ := pushRandomImage(b, benchtest.Bytes(1<<30)/layers, layers)
	api := acceptingAPI()
	defer api.Close()
	env := map[string]string{"RUNTIME_API_URL": api.URL, "RUNTIME_API_KEY": "k", "IMAGE_SOURCE": "registry",
		"OUTPUT_DIR": b.TempDir(), "POLL_INTERVAL": "10ms"}
	cfg := load(b, env)

	withDocker := exec.Command("docker", "info").Run() == nil
	if withDocker {
		if out, err := exec.Command("docker", "pull", "-q", ref).CombinedOutput(); err != nil {
			b.Fatalf("docker pull %s: %v: %s", ref, err, out)
		}
		defer exec.Command("docker", "rmi", "--force", ref).Run()
	} else {
		b.Log("no Docker engine: the docker save | gzip reference is not measured")
	}

	var ours, reference time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := imageJob(context.Background(), cfg, progress.New(io.Discard, "quiet"), ref, nil, 0); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		if withDocker {
			start = time.Now()
			if out, err := exec.Command("sh", "-c", `docker save "$0" | gzip > /dev/null`, ref).CombinedOutput(); err != nil {
				b.Fatalf("docker save | gzip: %v: %s", err, out)
			}
			reference += time.Since(start)
		}
	}
	b.StopTimer()
	if withDocker {
		b.ReportMetric(float64(ours)/float64(reference), "time/docker-save-gzip")
	}
	childEnv := []string{"RUNTIMEBUILD_EXPORTER=" + ref}
	for k, v := range env {
		childEnv = append(childEnv, k+"="+v)
	}
	b.ReportMetric(float64(benchtest.ChildPeakRSS(b, "TestImageExporterProcess", childEnv...))/(1<<20), "peak-RSS-MiB")
}

// TestImageExporterProcess is the exporting child of BenchmarkImageFromRegistry; it skips in a normal test run.
func TestImageExporterProcess(t *testing.T) {
	benchtest.InChild(t)
	ref := os.Getenv("RUNTIMEBUILD_EXPORTER")
	cfg := load(t, map[string]string{"RUNTIME_API_URL": os.Getenv("RUNTIME_API_URL"), "RUNTIME_API_KEY": "k",
		"IMAGE_SOURCE": "registry", "OUTPUT_DIR": os.Getenv("OUTPUT_DIR"), "POLL_INTERVAL": "10ms"})
	if _, err := imageJob(context.Background(), cfg, progress.New(io.Discard, "quiet"), ref, nil, 0); err != nil {
		t.Fatal(err)
	}
	benchtest.ReportPeakRSS(t)
}
