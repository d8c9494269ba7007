package pipeline

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/dockertest"
	"github.com/runtimebuild/runtimebuild/internal/gittest"
	"github.com/runtimebuild/runtimebuild/internal/progress"
)

// stagesDockerfile has three stages on a FROM scratch base; each writes its name, a build arg
// and the git SHA into /stage. The last one is what a plain build of the source makes, so a
// TARGET only shows in the image if the archive's Dockerfile really builds it. No "# syntax="
// line: the engine's builder cannot fetch a frontend offline.
const stagesDockerfile = `ARG GREETING=default greeting
FROM scratch AS tools
COPY busybox /bin/busybox

FROM tools AS first
ARG GREETING
ARG OPENHANDS_BUILD_GIT_SHA=unknown
RUN ["/bin/busybox", "sh", "-c", "echo \"first|$GREETING|$OPENHANDS_BUILD_GIT_SHA\" > /stage"]

FROM tools AS second
ARG GREETING
ARG OPENHANDS_BUILD_GIT_SHA=unknown
RUN ["/bin/busybox", "sh", "-c", "echo \"second|$GREETING|$OPENHANDS_BUILD_GIT_SHA\" > /stage"]

FROM tools AS last
RUN ["/bin/busybox", "sh", "-c", "echo last > /stage"]
`

// TestEachTargetIsBuiltForRealAsItsStage packs two TARGETs of a FROM scratch fixture, sends
// them to serve's Docker builder (a plain build: no --target, no --build-arg) and reads each
// image's /stage back.
func TestEachTargetIsBuiltForRealAsItsStage(t *testing.T) {
	dockertest.Require(t)
	src, sha := busyboxSource(t, stagesDockerfile)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	url, prefix, serverLog := serveDocker(t, ctx, "issue9-stages")

	for _, target := range []string{"first", "second"} {
		cfg := load(t, map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir(), "TARGET": target, "IMAGE_NAME": "stages",
			"BUILD_ARGS": "GREETING=hello from issue9's test", "RUNTIME_API_URL": url, "RUNTIME_API_KEY": "k", "POLL_INTERVAL": "200ms", "BUILD_TIMEOUT": "4m"})
		var logs bytes.Buffer
		log := progress.New(&logs, "plain")
		built, err := upload(ctx, cfg, log)
		if err != nil {
			t.Fatalf("upload: %v\n%s\nserver:\n%s", err, logs.String(), serverLog.String())
		}
		want := prefix + "/stages:" + sha[:7] + "-python-" + target
		if built.Image != want {
			t.Fatalf("image %s, want %s", built.Image, want)
		}
		out, err := exec.CommandContext(ctx, "docker", "run", "--rm", "--network", "none", built.Image, "/bin/busybox", "cat", "/stage").CombinedOutput()
		if got, want := strings.TrimSpace(string(out)), target+"|hello from issue9's test|"+sha; err != nil || got != want {
			t.Fatalf("%s holds /stage %q (%v), want %q: the image is not its stage", built.Image, got, err, want)
		}
		labels, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{json .Config.Labels}}", built.Image).Output()
		var l map[string]string
		if err != nil || json.Unmarshal(labels, &l) != nil || l["org.opencontainers.image.revision"] != sha || !strings.HasPrefix(l["dev.runtimebuild.dockerfile"], "Dockerfile@sha256:") {
			t.Fatalf("labels %s (%v)", labels, err)
		}
	}
}

// busyboxSource makes a git repository of dockerfile and the host's static busybox (a test image
// is FROM scratch, as no registry is reachable) and returns it with its commit's SHA.
func busyboxSource(t *testing.T, dockerfile string) (src, sha string) {
	t.Helper()
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		msg := "NO STATIC BUSYBOX at /bin/busybox (apt-get install -y busybox-static): " + err.Error()
		if os.Getenv("RUNTIMEBUILD_REQUIRE_DOCKER") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	src = gittest.Init(t, t.TempDir(), map[string]string{"Dockerfile": dockerfile, "busybox": "placeholder"})
	if err := os.WriteFile(src+"/busybox", busybox, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(src+"/busybox", 0o755); err != nil { // WriteFile keeps the mode of a file that exists
		t.Fatal(err)
	}
	gittest.Git(t, src, "commit", "-qam", "the real busybox")
	sha = strings.TrimSpace(gittest.Git(t, src, "rev-parse", "HEAD"))
	return src, sha
}

// serveDocker runs Serve with its Docker builder until the test ends and returns its URL, the
// registry prefix of its images (named after the test and removed at the end) and its log.
func serveDocker(t testing.TB, ctx context.Context, name string) (url, prefix string, serverLog *bytes.Buffer) {
	t.Helper()
	id := make([]byte, 4)
	rand.Read(id)
	prefix = "localhost/" + name + "-" + hex.EncodeToString(id) // every image of this test, removed at the end
	t.Cleanup(func() { removeImages(t, prefix) })

	ctx, cancel := context.WithCancel(ctx)
	serverLog = &bytes.Buffer{}
	addr := make(chan string, 1)
	done := make(chan error, 1)
	serveCfg := load(t, map[string]string{"SERVE_ADDR": "127.0.0.1:0", "RUNTIME_API_KEY": "k", "SERVE_REGISTRY_PREFIX": prefix})
	go func() {
		done <- Serve(ctx, serveCfg.Serve, progress.New(serverLog, "plain"), func(a string) { addr <- a })
	}()
	select {
	case a := <-addr:
		url = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return url, prefix, serverLog
}

// removeImages removes every image tag in the repositories below prefix, and nothing else.
func removeImages(t testing.TB, prefix string) {
	out, err := exec.Command("docker", "images", "--format", "{{.Repository}}:{{.Tag}}").Output()
	if err != nil {
		t.Logf("listing images to remove: %v", err)
		return
	}
	var mine []string
	for _, ref := range strings.Fields(string(out)) {
		if strings.HasPrefix(ref, prefix+"/") {
			mine = append(mine, ref)
		}
	}
	if len(mine) == 0 {
		return
	}
	if out, err := exec.Command("docker", append([]string{"rmi", "--force"}, mine...)...).CombinedOutput(); err != nil {
		t.Logf("removing %v: %v\n%s", mine, err, out)
	}
}
