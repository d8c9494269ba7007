package runtimeapi_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/benchtest"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// discard is a Runtime API that reads every upload to the end and accepts it: the benchmark
// measures the client, not a build.
func discard() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"build_id":"bench"}`)
	}))
}

func benchFile(tb testing.TB, size int64) string {
	p := filepath.Join(tb.TempDir(), "archive.tar.gz")
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{1}), size); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkUpload streams a 1 GiB archive (RUNTIMEBUILD_BENCH_BYTES) to a loopback server with
// SubmitBuild (multipart, base64) and, in the same iteration and over the same transport, with
// a plain io.Copy of the file as the request body. It reports both rates and the peak RSS of a
// separate uploading process. Run:
//
//	go test ./internal/runtimeapi -run '^$' -bench Upload -benchtime 2x
func BenchmarkUpload(b *testing.B) {
	size := benchtest.Bytes(1 << 30)
	archive := benchFile(b, size)
	srv := discard()
	defer srv.Close()
	client, err := runtimeapi.New(srv.URL, "bench-key", runtimeapi.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var ours, plain time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := client.SubmitBuild(context.Background(), runtimeapi.BuildRequest{Archive: archive, TargetImage: "x/y:z"}); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)

		start = time.Now()
		f, _ := os.Open(archive)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/build", f)
		req.ContentLength = size
		resp, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		plain += time.Since(start)
	}
	b.StopTimer()
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(mb/ours.Seconds(), "MB/s-upload")
	b.ReportMetric(mb/plain.Seconds(), "MB/s-io.Copy")
	b.ReportMetric(float64(benchtest.ChildPeakRSS(b, "TestUploaderProcess", "RUNTIMEBUILD_UPLOADER="+archive))/(1<<20), "peak-RSS-MiB")
}

// TestUploaderProcess is the child of BenchmarkUpload's memory measure.
func TestUploaderProcess(t *testing.T) {
	benchtest.InChild(t)
	archive := os.Getenv("RUNTIMEBUILD_UPLOADER")
	srv := discard()
	defer srv.Close()
	client, _ := runtimeapi.New(srv.URL, "bench-key", runtimeapi.Options{})
	if _, err := client.SubmitBuild(context.Background(), runtimeapi.BuildRequest{Archive: archive, TargetImage: "x/y:z"}); err != nil {
		t.Fatal(err)
	}
	benchtest.ReportPeakRSS(t)
}
