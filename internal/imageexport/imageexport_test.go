package imageexport_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/runtimebuild/runtimebuild/internal/docker"
	"github.com/runtimebuild/runtimebuild/internal/dockertest"
	"github.com/runtimebuild/runtimebuild/internal/imageexport"
)

// pushRandom serves an in-memory registry on 127.0.0.1 and pushes a random multi-layer image
// to it; it returns the reference and the image.
func pushRandom(t *testing.T, layers int) (string, v1.Image) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(nopLogger())))
	t.Cleanup(srv.Close)
	img, err := random.Image(64<<10, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(srv.URL, "http://") + "/team/app:" + randomTag()
	parsed, _ := name.ParseReference(ref)
	if err := remote.Write(parsed, img); err != nil {
		t.Fatal(err)
	}
	return ref, img
}

func randomTag() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

// checkLoadArchive asserts that the gzip file is a docker load archive naming ref whose layers
// are those of want.
func checkLoadArchive(t *testing.T, gz string, ref string, want v1.Image) {
	t.Helper()
	plain := gunzip(t, gz)
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tarball.ImageFromPath(plain, &tag)
	if err != nil {
		t.Fatalf("not a docker load archive naming %s: %v", ref, err)
	}
	if digests(t, got) == nil || !slices.Equal(digests(t, got), digests(t, want)) {
		t.Fatalf("layer digests %v, want %v", digests(t, got), digests(t, want))
	}
}

func digests(t *testing.T, img v1.Image) []string {
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range layers {
		d, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.String())
	}
	return out
}

func TestRegistryExportWritesADockerLoadArchive(t *testing.T) {
	ref, img := pushRandom(t, 3)
	dir := t.TempDir()
	path, err := imageexport.WriteArchive(context.Background(), imageexport.Registry{Platform: "linux/amd64", Keychain: authn.NewMultiKeychain()}, ref, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkLoadArchive(t, path, ref, img)
}

func TestRegistryExportErrorsAreOneLine(t *testing.T) {
	ref, _ := pushRandom(t, 1)
	missing := ref[:strings.LastIndex(ref, ":")] + ":nope"
	tests := []struct {
		ref, platform, want string
		typed               error // the typed error the caller decides on; nil: none
	}{
		{missing, "linux/amd64", "does not exist in its registry", nil},
		{"UPPER/Case::bad", "linux/amd64", "is not a valid image reference", &imageexport.ReferenceError{}},
		{ref, "linux/amd64/v8/x", `platform "linux/amd64/v8/x": `, &imageexport.PlatformError{}},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		_, err := imageexport.WriteArchive(context.Background(), imageexport.Registry{Platform: tt.platform, Keychain: authn.NewMultiKeychain()}, tt.ref, dir, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want one line with %q", tt.ref, err, tt.want)
		}
		var re *imageexport.ReferenceError
		var pe *imageexport.PlatformError
		switch tt.typed.(type) {
		case *imageexport.ReferenceError:
			if !errors.As(err, &re) || re.Ref != tt.ref {
				t.Errorf("%s: err = %#v, want a *ReferenceError", tt.ref, err)
			}
		case *imageexport.PlatformError:
			if !errors.As(err, &pe) || pe.Platform != tt.platform {
				t.Errorf("%s: err = %#v, want a *PlatformError", tt.ref, err)
			}
		default:
			if errors.As(err, &re) || errors.As(err, &pe) {
				t.Errorf("%s: err = %#v, want no usage type", tt.ref, err)
			}
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("%s: left behind %v", tt.ref, left)
		}
	}
}

func TestDockerExportOfALocallyBuiltImage(t *testing.T) {
	dockertest.Require(t)
	ctx := context.Background()
	ref := "runtimebuild-test/scratch:" + randomTag()
	var ctxTar bytes.Buffer
	zw := gzip.NewWriter(&ctxTar)
	tw := tar.NewWriter(zw)
	for name, content := range map[string]string{"Dockerfile": "FROM scratch\nCOPY hello.txt /\n", "hello.txt": "hello " + ref} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content))})
		io.WriteString(tw, content)
	}
	tw.Close()
	zw.Close()
	dockertest.BuildImage(t, &ctxTar, ref)
	t.Cleanup(func() { dockertest.RemoveImages(ref) })
	path, err := imageexport.WriteArchive(ctx, imageexport.Docker{Engine: dockertest.Engine(t), Pull: false}, ref, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var nl *imageexport.NotLocalError
	if _, err := imageexport.WriteArchive(ctx, imageexport.Docker{Engine: dockertest.Engine(t), Pull: false}, ref+"-absent", t.TempDir(), nil); !errors.As(err, &nl) || nl.Ref != ref+"-absent" {
		t.Fatalf("an image the engine lacks, without pulling: err = %v, want a *NotLocalError", err)
	}
	tag, _ := name.NewTag(ref)
	plain := gunzip(t, path)
	img, err := tarball.ImageFromPath(plain, &tag)
	if err != nil {
		t.Fatalf("docker save output does not load as %s: %v", ref, err)
	}
	if n := len(digests(t, img)); n != 1 {
		t.Fatalf("%d layers, want 1", n)
	}
}

func TestDockerPullsFromARegistry(t *testing.T) {
	dockertest.Require(t)
	ref, img := pushRandom(t, 2)
	t.Cleanup(func() { dockertest.RemoveImages(ref) })
	path, err := imageexport.WriteArchive(context.Background(), imageexport.Docker{Engine: dockertest.Engine(t), Pull: true}, ref, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkLoadArchive(t, path, ref, img)
}

func TestDockerPullFailureFallsBackToTheLocalImageWithAWarning(t *testing.T) {
	dockertest.Require(t)
	ref, img := pushRandom(t, 1)
	t.Cleanup(func() { dockertest.RemoveImages(ref) })
	if _, err := imageexport.WriteArchive(context.Background(), imageexport.Docker{Engine: dockertest.Engine(t), Pull: true}, ref, t.TempDir(), nil); err != nil {
		t.Fatal(err)
	}
	// Same name, but now in a registry that does not have it: the pull fails, the local image serves.
	other, _ := pushRandom(t, 1)
	tagged := other[:strings.LastIndex(other, "/")] + "/team/app:missing-" + randomTag()
	dockertest.TagImage(t, ref, tagged)
	t.Cleanup(func() { dockertest.RemoveImages(tagged) })
	warn := &warnings{}
	path, err := imageexport.WriteArchive(context.Background(), imageexport.Docker{Engine: dockertest.Engine(t), Pull: true, Log: warn}, tagged, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warn.lines) != 1 || !strings.Contains(warn.lines[0], "using the local image") {
		t.Fatalf("warnings %q", warn.lines)
	}
	checkLoadArchive(t, path, tagged, img)
	_, err = imageexport.WriteArchive(context.Background(), imageexport.Docker{Engine: dockertest.Engine(t), Pull: true, Log: warn}, tagged+"-absent", t.TempDir(), nil)
	if err == nil || errors.Is(err, docker.ErrNoEngine) {
		t.Fatalf("an image that exists nowhere: err = %v", err)
	}
}

type warnings struct{ lines []string }

func (w *warnings) Infof(string, ...any)     {}
func (w *warnings) Warnf(f string, a ...any) { w.lines = append(w.lines, fmt.Sprintf(f, a...)) }

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func gunzip(t *testing.T, path string) string {
	in, _ := os.Open(path)
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), "plain.tar")
	out, _ := os.Create(plain)
	io.Copy(out, zr)
	out.Close()
	return plain
}
