package pipeline

import (
	"compress/gzip"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// loadChecker is a server.Builder that reads each uploaded image archive as `docker load` would
// and keeps the image it names.
type loadChecker struct {
	mu     sync.Mutex
	images map[string][]string // tag -> layer diff IDs
	err    error
}

func (l *loadChecker) Build(ctx context.Context, job *server.Job, _ io.Writer) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if job.Kind != server.KindImage {
		l.err = os.ErrInvalid
		return "", l.err
	}
	in, _ := os.Open(job.Archive)
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		l.err = err
		return "", err
	}
	plain := filepath.Join(job.Dir, "plain.tar")
	out, _ := os.Create(plain)
	io.Copy(out, zr)
	out.Close()
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(plain) })
	if err != nil || len(m) != 1 || len(m[0].RepoTags) != 1 {
		l.err = err
		return "", os.ErrInvalid
	}
	tag, _ := name.NewTag(m[0].RepoTags[0])
	img, err := tarball.ImageFromPath(plain, &tag)
	if err != nil {
		l.err = err
		return "", err
	}
	l.images[m[0].RepoTags[0]] = diffIDs(img)
	return job.TargetImage, nil
}

func (l *loadChecker) ImageExists(context.Context, string) (bool, error) { return false, nil }

func diffIDs(img v1.Image) []string {
	layers, _ := img.Layers()
	var out []string
	for _, layer := range layers {
		d, _ := layer.DiffID()
		out = append(out, d.String())
	}
	return out
}

// pushRandomImage serves an in-memory registry on 127.0.0.1 for the rest of the test and
// pushes to it an image of random layers; it returns the image's reference and the image.
func pushRandomImage(tb testing.TB, layerBytes int64, layers int) (string, v1.Image) {
	tb.Helper()
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	tb.Cleanup(reg.Close)
	img, err := random.Image(layerBytes, int64(layers))
	if err != nil {
		tb.Fatal(err)
	}
	ref := strings.TrimPrefix(reg.URL, "http://") + "/team/app:1.0"
	parsed, _ := name.ParseReference(ref)
	if err := remote.Write(parsed, img); err != nil {
		tb.Fatal(err)
	}
	return ref, img
}

func TestImageFromARegistryArrivesAsADockerLoadArchive(t *testing.T) {
	ref, img := pushRandomImage(t, 256<<10, 4)
	checker := &loadChecker{images: map[string][]string{}}
	srv, err := server.New(server.Options{Key: "k", Builder: checker, WorkDir: filepath.Join(t.TempDir(), "w"), RegistryPrefix: strings.Split(ref, "/")[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	api := httptest.NewServer(srv.Handler())
	defer api.Close()
	out := t.TempDir()
	cfg := load(t, map[string]string{"RUNTIME_API_URL": api.URL, "RUNTIME_API_KEY": "k", "IMAGE_SOURCE": "registry",
		"OUTPUT_DIR": out, "POLL_INTERVAL": "20ms"})
	built, err := imageJob(context.Background(), cfg, progress.New(io.Discard, "quiet"), ref, []string{"latest"}, 0)
	if err != nil {
		t.Fatalf("%v (server side: %v)", err, checker.err)
	}
	if built.Image != ref || built.BuildID == "" {
		t.Fatalf("built %+v", built)
	}
	if got := checker.images[ref]; got == nil || !slices.Equal(got, diffIDs(img)) {
		t.Fatalf("the server loaded %v, want layers %v", checker.images, diffIDs(img))
	}
	left, _ := os.ReadDir(out)
	if len(left) != 1 || !strings.HasSuffix(left[0].Name(), ".tar.gz.json") {
		t.Fatalf("OUTPUT_DIR holds %v: want only the result file (the archive is removed)", left)
	}
	r, err := result.Read(filepath.Join(out, strings.TrimSuffix(left[0].Name(), ".json")))
	if err != nil || r.Status != "SUCCESS" || r.Image != ref || r.BuildID != built.BuildID {
		t.Fatalf("result %+v, %v", r, err)
	}
}

func TestImageRemovesItsArchiveWhenTheUploadFails(t *testing.T) {
	ref, _ := pushRandomImage(t, 1024, 1)
	out := t.TempDir()
	// reached before the export (image needs no registry prefix: a 4xx there is an answer), then refusing the upload
	api := answering(t, http.StatusBadRequest, `{"detail":"no uploads today"}`)
	cfg := load(t, map[string]string{"RUNTIME_API_URL": api, "RUNTIME_API_KEY": "k", "IMAGE_SOURCE": "registry",
		"OUTPUT_DIR": out, "BUILD_TIMEOUT": "30s"})
	if _, err := imageJob(context.Background(), cfg, progress.New(io.Discard, "quiet"), ref, nil, 0); err == nil || !strings.Contains(err.Error(), "POST /build: 400 Bad Request: no uploads today") {
		t.Fatalf("err = %v, want the refused upload", err)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// imageJob runs Image as the image target does: the client first.
func imageJob(ctx context.Context, cfg config.Config, log *progress.Log, ref string, tags []string, timeout time.Duration) (Built, error) {
	client, err := NewClient(cfg.API, log)
	if err != nil {
		return Built{}, err
	}
	return Image(ctx, client, cfg.API, cfg.Export, cfg.Output.GitHubOutput, log, ref, tags, timeout)
}
