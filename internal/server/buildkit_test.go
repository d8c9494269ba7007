package server_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/runtimebuild/runtimebuild/internal/buildkit"
	"github.com/runtimebuild/runtimebuild/internal/docker"
	"github.com/runtimebuild/runtimebuild/internal/dockertest"
	"github.com/runtimebuild/runtimebuild/internal/imagename"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// multiStage is the fixture of issue 10: the target "app" needs only the busybox stage; the
// unneeded stage fails, so a builder that runs every stage fails the build. The target uses a
// cache mount, COPY --chmod and COPY --chown=${ARG}; "other" is a second target of one context.
const multiStage = `FROM scratch AS busybox
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]

FROM busybox AS unneeded
RUN echo the unneeded stage ran && exit 3

FROM busybox AS app
ARG OWNER=1234
RUN --mount=type=cache,target=/cache echo "cache-mount step wrote this" > /cache/note && cp /cache/note /note && echo "the cache mount holds: $(ls /cache)" && echo NONCE > /nonce
COPY --chmod=755 tool.sh /usr/local/bin/tool.sh
COPY --chown=${OWNER} owned.txt /owned.txt
CMD ["/bin/sh", "-c", "cat /note; stat -c 'mode %a' /usr/local/bin/tool.sh; stat -c 'owner %u' /owned.txt"]

FROM app AS other
LABEL which=other
`

// fixtureArchive packs a context with the fixture's files.
func fixtureArchive(t *testing.T, dockerfile string) string {
	return dockertest.ContextArchive(t, dockerfile, map[string]string{"tool.sh": "#!/bin/sh\necho tool\n", "owned.txt": "owned\n"})
}

func engineBuilder(t testing.TB) *server.DockerBuilder {
	t.Helper()
	dockertest.Require(t)
	e, err := docker.NewEngine(docker.EngineConfig{Host: os.Getenv("DOCKER_HOST")})
	if err != nil {
		t.Fatal(err)
	}
	return &server.DockerBuilder{Engine: e}
}

func daemonBuilder(t *testing.T) *server.BuildkitBuilder {
	t.Helper()
	return &server.BuildkitBuilder{Daemon: buildkit.Daemon{Host: dockertest.BuildkitHost(t)}}
}

// submit posts the archive naming a target stage (the field the hosted API accepts) and
// follows the build to its end.
func (l *local) submit(t testing.TB, path, image, stage string, tags ...string) (string, runtimeapi.Status, error) {
	t.Helper()
	fields := map[string]string{"target_image": image}
	if stage != "" {
		fields["target"] = stage
	}
	for i, tag := range tags {
		fields["tags_"+strconv.Itoa(i)] = tag
	}
	resp, out := l.post(t, path, fields)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /build: %d %v", resp.StatusCode, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Polled often, so that a benchmark measures the build rather than the wait between polls.
	st, err := l.client.WaitForBuild(ctx, out["build_id"], runtimeapi.Wait{FirstPoll: 10 * time.Millisecond, Interval: 25 * time.Millisecond})
	return out["build_id"], st, err
}

// imageID is the engine's ID of image.
func imageID(t *testing.T, image string) string {
	t.Helper()
	img, err := dockertest.Engine(t).Inspect(context.Background(), image)
	if err != nil {
		t.Fatal(err)
	}
	return img.ID
}

// dockerOut runs the docker CLI: only to run a built image (what a user does with it).
func dockerOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// checkStepLogs checks that /build_logs shows BuildKit's steps, and that the unneeded stage never ran.
func checkStepLogs(t *testing.T, logs string) {
	t.Helper()
	for _, want := range []string{"[app 1/3] RUN --mount=type=cache", "the cache mount holds: note", "COPY --chmod=755 tool.sh", "DONE"} {
		if !strings.Contains(logs, want) {
			t.Errorf("/build_logs lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "unneeded stage ran") || strings.Contains(logs, "exit 3") {
		t.Errorf("the unneeded stage ran:\n%s", logs)
	}
}

// targetImage names a target's image as the client does (issue 7): {sha7}-{tag}-{target}.
func targetImage(repo, sha, target string) string {
	return repo + ":" + imagename.Primary(imagename.Input{SHA: sha, Target: target, Tags: []string{"python"}})
}

func TestTheEngineBuilderBuildsOnlyTheStagesTheTargetNeeds(t *testing.T) {
	l := start(t, server.Options{Builder: engineBuilder(t)})
	sha := randomHex(20)
	image := targetImage("localhost/runtime/serve-test", sha, "app")
	other := targetImage("localhost/runtime/serve-test", sha, "other")
	t.Cleanup(func() { dockertest.RemoveImages(image, image+"-extra", other) })
	archive := fixtureArchive(t, multiStage)

	id, st, err := l.submit(t, archive, image, "app", image+"-extra")
	if err != nil || st.Status != "SUCCESS" || st.Image != image {
		t.Fatalf("build: status %+v, err %v\n%s", st, err, l.buildLogs(t, id))
	}
	checkStepLogs(t, l.buildLogs(t, id))
	for _, img := range []string{image, image + "-extra"} {
		imageID(t, img)
	}
	run := dockerOut(t, "run", "--rm", "--name", "rtb-issue10-"+randomHex(6), image)
	for _, want := range []string{"cache-mount step wrote this", "mode 755", "owner 1234"} {
		if !strings.Contains(run, want) {
			t.Errorf("running %s printed %q, lacking %q", image, run, want)
		}
	}
	if info := l.imageExists(t, image); info["exists"] != true || info["image"] == nil {
		t.Fatalf("/image_exists of the built image: %v", info)
	}

	// The same context's other target: a different image; no target at all: the last stage.
	if _, st, err := l.submit(t, archive, other, "other"); err != nil || st.Status != "SUCCESS" {
		t.Fatalf("target other: %+v %v", st, err)
	}
	if a, b := imageID(t, image), imageID(t, other); a == b {
		t.Fatalf("targets app and other gave one image %s", a)
	}
	last := image + "-last"
	if other == image {
		t.Fatalf("one name %s for both targets", image)
	}
	t.Cleanup(func() { dockertest.RemoveImages(last) })
	if _, st, err := l.submit(t, archive, last, ""); err != nil || st.Status != "SUCCESS" {
		t.Fatalf("no target: %+v %v", st, err)
	}
	if got := inspectLabel(t, last, "which"); got != "other" {
		t.Fatalf("no target built a stage labelled %q, want the last stage (other)", got)
	}
	if left := leftovers(t, l.work); len(left) > 1 { // the server's own directory, empty
		t.Fatalf("build files left behind: %v", left)
	}
}

func TestAFailedStepIsTheBuildsErrorWithItsLastLines(t *testing.T) {
	l := start(t, server.Options{Builder: engineBuilder(t)})
	df := "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nRUN echo first line && echo second line >&2 && exit 7\n"
	_, st, err := l.submit(t, fixtureArchive(t, df), uniqueImage(t), "")
	var failed *runtimeapi.BuildFailedError
	if !errors.As(err, &failed) || st.Status != "FAILURE" {
		t.Fatalf("err %v status %+v, want FAILURE", err, st)
	}
	for _, want := range []string{"RUN echo first line", "exit code: 7", "first line", "second line"} {
		if !strings.Contains(failed.Reason, want) {
			t.Errorf("the error %q lacks %q", failed.Reason, want)
		}
	}
	if strings.Contains(failed.Reason, "rpc error") {
		t.Errorf("the error is a Go error chain: %q", failed.Reason)
	}
}

// inMemoryRegistry serves go-containerregistry's registry on 127.0.0.1.
func inMemoryRegistry(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// fileIn finds a file in the image's layers (the last layer that has it wins).
func fileIn(t *testing.T, img v1.Image, path string) (*tar.Header, string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s is not in the image", path)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "/") == path {
			b, _ := io.ReadAll(tr)
			return h, string(b)
		}
	}
}

func TestTheBuildkitBuilderPushesToTheTargetsRegistry(t *testing.T) {
	reg := inMemoryRegistry(t)
	l := start(t, server.Options{Builder: daemonBuilder(t), RegistryPrefix: reg + "/team"})
	sha := randomHex(20)
	image := targetImage(reg+"/team/app", sha, "app")
	tag := image[strings.LastIndex(image, ":")+1:]
	archive := fixtureArchive(t, multiStage)

	id, st, err := l.submit(t, archive, image, "app", "extra-"+tag)
	if err != nil || st.Status != "SUCCESS" {
		t.Fatalf("build: status %+v, err %v\n%s", st, err, l.buildLogs(t, id))
	}
	checkStepLogs(t, l.buildLogs(t, id))
	repo, _ := name.NewRepository(reg + "/team/app")
	tags, err := remote.List(repo)
	if err != nil || !strings.Contains(" "+strings.Join(tags, " ")+" ", " "+tag+" ") || !strings.Contains(strings.Join(tags, " "), "extra-"+tag) {
		t.Fatalf("the registry lists %v (%v), want %s and extra-%s", tags, err, tag, tag)
	}
	ref, _ := name.ParseReference(image)
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := fileIn(t, img, "usr/local/bin/tool.sh"); h.Mode&0o777 != 0o755 {
		t.Errorf("tool.sh has mode %o, want 755", h.Mode&0o777)
	}
	if h, _ := fileIn(t, img, "owned.txt"); h.Uid != 1234 {
		t.Errorf("owned.txt has owner %d, want 1234", h.Uid)
	}
	if _, body := fileIn(t, img, "note"); body != "cache-mount step wrote this\n" {
		t.Errorf("/note holds %q", body)
	}
	if info := l.imageExists(t, image); info["exists"] != true || info["image"] == nil {
		t.Fatalf("/image_exists of the pushed image: %v", info)
	}
	if info := l.imageExists(t, reg+"/team/app:never-"+tag); info["exists"] != false {
		t.Fatalf("/image_exists of an image never pushed: %v", info)
	}

	other := targetImage(reg+"/team/app", sha, "other")
	if _, st, err := l.submit(t, archive, other, "other"); err != nil || st.Status != "SUCCESS" {
		t.Fatalf("target other: %+v %v", st, err)
	}
	a, _ := img.Digest()
	oref, _ := name.ParseReference(other)
	oimg, err := remote.Image(oref)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := oimg.Digest(); a == b {
		t.Fatalf("targets app and other gave one image %s", a)
	}
	if left := leftovers(t, l.work); len(left) > 1 { // the server's own directory, empty
		t.Fatalf("build files left behind: %v", left)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func TestSERVE_BUILD_TIMEOUTEndsTheBuildAsTIMEOUTWithNoProcessAndNoFilesLeft(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a 20 s SERVE_BUILD_TIMEOUT; not in -short")
	}
	builders := map[string]func(*testing.T) server.Builder{
		"engine":    func(t *testing.T) server.Builder { return engineBuilder(t) },
		"buildkitd": func(t *testing.T) server.Builder { return daemonBuilder(t) },
	}
	for name, builder := range builders {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // each waits out its timeout; they share nothing but the builders' daemons
			b := builder(t)
			image, prefix := uniqueImage(t), ""
			if name == "buildkitd" {
				reg := inMemoryRegistry(t)
				image, prefix = reg+"/team/sleep:1", reg+"/team"
			}
			l := start(t, server.Options{Builder: b, BuildTimeout: 20 * time.Second, RegistryPrefix: prefix})
			archive, marker := dockertest.SleepingContext(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			id, err := l.client.SubmitBuild(ctx, runtimeapi.BuildRequest{Archive: archive, TargetImage: image})
			if err != nil {
				t.Fatal(err)
			}
			if !dockertest.WaitFor(20*time.Second, func() bool { return len(dockertest.Processes(marker)) > 0 }) {
				t.Fatalf("the step %q never ran:\n%s", marker, l.buildLogs(t, id))
			}
			st, err := l.client.WaitForBuild(ctx, id, runtimeapi.Wait{FirstPoll: 50 * time.Millisecond, Interval: 250 * time.Millisecond})
			if st.Status != "TIMEOUT" {
				t.Fatalf("status %+v (%v), want TIMEOUT", st, err)
			}
			if !dockertest.WaitFor(20*time.Second, func() bool { return len(dockertest.Processes(marker)) == 0 }) {
				t.Fatalf("the step still runs after the timeout: %v", dockertest.Processes(marker))
			}
			if left := leftovers(t, l.work); len(left) > 1 { // the server's own directory, empty
				t.Fatalf("build files left behind: %v", left)
			}
		})
	}
}

func TestTheBuildkitBuilderPushesAnImageArchiveToTheRegistry(t *testing.T) {
	// No daemon is needed for an image archive: it goes to the registry straight from serve.
	reg := inMemoryRegistry(t)
	l := start(t, server.Options{Builder: &server.BuildkitBuilder{Daemon: buildkit.Daemon{Host: "unix:///nonexistent.sock"}}, RegistryPrefix: reg + "/team"})
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := name.NewTag("made.here/app:1")
	var saved bytes.Buffer
	zw := gzip.NewWriter(&saved)
	if err := tarball.Write(src, img, zw); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	path := filepath.Join(t.TempDir(), "image.tar.gz")
	os.WriteFile(path, saved.Bytes(), 0o644)

	target := reg + "/team/loaded:1"
	_, st, err := l.submit(t, path, target, "", "extra")
	if err != nil || st.Status != "SUCCESS" {
		t.Fatalf("%+v %v", st, err)
	}
	want, _ := img.Digest()
	for _, ref := range []string{target, reg + "/team/loaded:extra"} {
		r, _ := name.ParseReference(ref)
		got, err := remote.Image(r)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if d, _ := got.Digest(); d != want {
			t.Fatalf("%s is %s, want the archive's image %s", ref, d, want)
		}
	}
	if info := l.imageExists(t, target); info["exists"] != true {
		t.Fatalf("/image_exists after the push: %v", info)
	}
}
