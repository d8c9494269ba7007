// Package dockertest gates tests on a Docker engine and a buildkitd: they run for real where
// `docker info` answers (and RUNTIMEBUILD_TEST_BUILDKIT_HOST names a buildkitd), skip loudly
// where not, and fail instead of skipping when RUNTIMEBUILD_REQUIRE_DOCKER=1 (set by .ci/run
// where an engine answers). It also holds the helpers those tests share.
package dockertest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
	"github.com/runtimebuild/runtimebuild/internal/docker"
)

// Require skips or fails t when no Docker engine answers (DOCKER_HOST, or the default socket).
func Require(t testing.TB) {
	t.Helper()
	Engine(t)
}

// Engine returns a client of this machine's engine once it answered a ping; without one the
// test skips loudly, or fails under RUNTIMEBUILD_REQUIRE_DOCKER=1.
func Engine(t testing.TB) *docker.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := docker.NewEngine(docker.EngineConfig{Host: os.Getenv("DOCKER_HOST")})
	if err == nil {
		if err = e.Ping(ctx); err == nil {
			t.Cleanup(func() { e.Close() })
			return e
		}
		e.Close()
	}
	msg := "NO DOCKER ENGINE: " + err.Error() + "; this test of the real engine did not run"
	if os.Getenv("RUNTIMEBUILD_REQUIRE_DOCKER") == "1" {
		t.Fatal(msg + " (RUNTIMEBUILD_REQUIRE_DOCKER=1)")
	}
	t.Skip(msg)
	return nil
}

// BuildkitHost returns the address of the buildkitd the tests build on
// (RUNTIMEBUILD_TEST_BUILDKIT_HOST, set by .ci/run, which starts one); without it the test
// skips loudly, or fails under RUNTIMEBUILD_REQUIRE_DOCKER=1.
func BuildkitHost(t testing.TB) string {
	t.Helper()
	return fromCI(t, "RUNTIMEBUILD_TEST_BUILDKIT_HOST", "NO BUILDKITD: RUNTIMEBUILD_TEST_BUILDKIT_HOST is not set (.ci/run starts a buildkitd and sets it); this test of a real buildkitd did not run")
}

// fromCI returns the variable .ci/run sets for a test; without it the test skips loudly with
// msg, or fails under RUNTIMEBUILD_REQUIRE_DOCKER=1.
func fromCI(t testing.TB, name, msg string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	if os.Getenv("RUNTIMEBUILD_REQUIRE_DOCKER") == "1" {
		t.Fatal(msg + " (RUNTIMEBUILD_REQUIRE_DOCKER=1)")
	}
	t.Skip(msg)
	return ""
}

// Busybox returns Debian's static busybox (package busybox-static), which test images COPY
// into FROM scratch stages so that RUN works with no registry; without it the test skips
// loudly, or fails under RUNTIMEBUILD_REQUIRE_DOCKER=1.
func Busybox(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("/bin/busybox")
	if err == nil {
		return b
	}
	msg := "NO STATIC BUSYBOX: " + err.Error() + " (apt-get install busybox-static); this build test did not run"
	if os.Getenv("RUNTIMEBUILD_REQUIRE_DOCKER") == "1" {
		t.Fatal(msg + " (RUNTIMEBUILD_REQUIRE_DOCKER=1)")
	}
	t.Skip(msg)
	return nil
}

// Processes lists the command lines of this machine's processes that contain marker (a build
// step's RUN runs on this machine, under the engine's or buildkitd's runc).
func Processes(marker string) []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var found []string
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, marker) {
			found = append(found, strings.TrimSpace(cmd))
		}
	}
	return found
}

// WaitFor polls cond every 50 ms until it holds or the deadline passes; it reports whether it held.
func WaitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TagImage gives image another name in the engine (a test's fixture).
func TagImage(t testing.TB, image, ref string) {
	t.Helper()
	if err := Engine(t).Tag(context.Background(), image, ref); err != nil {
		t.Fatal(err)
	}
}

// RemoveImages removes images from the engine (a test's cleanup); what is missing is no error.
func RemoveImages(images ...string) {
	e, err := docker.NewEngine(docker.EngineConfig{Host: os.Getenv("DOCKER_HOST")})
	if err != nil {
		return
	}
	defer e.Close()
	for _, image := range images {
		e.Remove(context.Background(), image)
	}
}

// BuildImage builds the gzip tar context with the engine's legacy builder (a test's fixture
// image, made apart from the code under test) and names it ref.
func BuildImage(t testing.TB, contextTarGz io.Reader, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Engine(t).API().ImageBuild(ctx, contextTarGz, client.ImageBuildOptions{
		Tags: []string{ref}, Version: build.BuilderV1, Remove: true, ForceRemove: true,
	})
	if err != nil {
		t.Fatalf("building the fixture %s: %v", ref, err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return
		} else if err != nil {
			t.Fatalf("building the fixture %s: %v", ref, err)
		}
		if msg.Error != "" {
			t.Fatalf("building the fixture %s: %s", ref, msg.Error)
		}
	}
}

// FixtureImage builds a one-file FROM scratch image under a new name and removes it when the
// test ends; it returns the name.
func FixtureImage(t testing.TB) string {
	t.Helper()
	ref := "runtimebuild-test/fixture:" + randomWord()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, content := range map[string]string{"Dockerfile": "FROM scratch\nCOPY hello.txt /\n", "hello.txt": "hello " + ref} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
		io.WriteString(tw, content)
	}
	tw.Close()
	zw.Close()
	BuildImage(t, &buf, ref)
	t.Cleanup(func() { RemoveImages(ref) })
	return ref
}

// ContextArchive writes a build context upload (tar.gz) holding the Dockerfile, Debian's
// static busybox as "busybox" and files, and returns its path. NONCE in the Dockerfile becomes
// a new random word, so that the steps after it run instead of coming from the builder's cache.
func ContextArchive(t testing.TB, dockerfile string, files map[string]string) string {
	t.Helper()
	bb := Busybox(t)
	dockerfile = strings.ReplaceAll(dockerfile, "NONCE", randomWord())
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(name string, mode int64, body []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	add("Dockerfile", 0o644, []byte(dockerfile))
	add("busybox", 0o755, bb)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		add(n, 0o644, []byte(files[n]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "context.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// busyboxStage is the first stage of every test image: busybox installed FROM scratch.
const busyboxStage = "FROM scratch AS busybox\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"

// SleepingContext is a context whose step sleeps for over two hours: marker ("sleep 7NNN"), unique
// to the call, finds its process (Processes) while it runs and proves it gone after.
func SleepingContext(t testing.TB) (archive, marker string) {
	t.Helper()
	var n [2]byte
	rand.Read(n[:])
	marker = fmt.Sprintf("sleep 7%03d", (int(n[0])<<8|int(n[1]))%1000)
	return ContextArchive(t, busyboxStage+"FROM busybox\nRUN echo NONCE && "+marker+"\n", nil), marker
}

func randomWord() string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}

// BuildkitdBinary returns the buildkitd binary tests may start a daemon of their own with
// (RUNTIMEBUILD_TEST_BUILDKITD, set by .ci/run); without it the test skips loudly, or fails
// under RUNTIMEBUILD_REQUIRE_DOCKER=1.
func BuildkitdBinary(t testing.TB) string {
	t.Helper()
	return fromCI(t, "RUNTIMEBUILD_TEST_BUILDKITD", "NO BUILDKITD BINARY: RUNTIMEBUILD_TEST_BUILDKITD is not set (.ci/run builds buildkitd and sets it); this test did not run")
}

// BuildkitHosts returns n of the buildkitds .ci/run starts (RUNTIMEBUILD_TEST_BUILDKIT_HOSTS,
// comma-separated); with fewer the test skips loudly, or fails under RUNTIMEBUILD_REQUIRE_DOCKER=1.
func BuildkitHosts(t testing.TB, n int) []string {
	t.Helper()
	list := fromCI(t, "RUNTIMEBUILD_TEST_BUILDKIT_HOSTS", "NO BUILDKITD FARM: RUNTIMEBUILD_TEST_BUILDKIT_HOSTS is not set (.ci/run starts three buildkitds and sets it); this test of several daemons did not run")
	hosts := strings.Split(list, ",")
	if len(hosts) < n {
		msg := fmt.Sprintf("RUNTIMEBUILD_TEST_BUILDKIT_HOSTS names %d buildkitds, this test needs %d", len(hosts), n)
		if os.Getenv("RUNTIMEBUILD_REQUIRE_DOCKER") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return hosts[:n]
}

// Registry returns the address (127.0.0.1:port) of the registry .ci/run starts
// (RUNTIMEBUILD_TEST_REGISTRY: Debian's docker-registry, no auth); without it the test skips
// loudly, or fails under RUNTIMEBUILD_REQUIRE_DOCKER=1.
func Registry(t testing.TB) string {
	t.Helper()
	return fromCI(t, "RUNTIMEBUILD_TEST_REGISTRY", "NO REGISTRY: RUNTIMEBUILD_TEST_REGISTRY is not set (.ci/run starts docker-registry and sets it); this test of a real registry did not run")
}

// Buildkitd starts a buildkitd of the test's own (RUNTIMEBUILD_TEST_BUILDKITD) on a unix socket,
// with its own state, and returns its address and its process; it is killed when the test ends.
func Buildkitd(t testing.TB) (host string, proc *os.Process) {
	t.Helper()
	bin := BuildkitdBinary(t)
	dir, err := os.MkdirTemp("", "bk-") // short: a unix socket's path has at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "bk.sock")
	cmd := exec.Command(bin, "--root", filepath.Join(dir, "state"), "--addr", "unix://"+sock,
		"--oci-worker-snapshotter", "native", "--containerd-worker=false")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	})
	if !WaitFor(30*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }) {
		t.Fatalf("buildkitd did not listen on %s within 30s: %s", sock, out.String())
	}
	return "unix://" + sock, cmd.Process
}
