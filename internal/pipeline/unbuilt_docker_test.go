package pipeline

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/dockertest"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/progress"
)

// TestAStageTheTargetDoesNotNeedIsNotBuiltForReal packs a TARGET of a Dockerfile whose last
// stage copies a file the context lacks: context says so in a warning and packs, and serve's
// BuildKit builds the archive, as it builds only the stages the target needs.
func TestAStageTheTargetDoesNotNeedIsNotBuiltForReal(t *testing.T) {
	dockertest.Require(t)
	src, sha := busyboxSource(t, stagesDockerfile+"\nFROM tools AS unbuilt\nCOPY gone.txt /gone.txt\n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	url, _, serverLog := serveDocker(t, ctx, "issue9b-unbuilt")

	env := func(target string) map[string]string {
		return map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": t.TempDir(), "TARGET": target, "IMAGE_NAME": "unbuilt", "BUILD_ARGS": "GREETING=from issue9b",
			"RUNTIME_API_URL": url, "RUNTIME_API_KEY": "k", "POLL_INTERVAL": "200ms", "BUILD_TIMEOUT": "4m"}
	}
	if _, logs, err := pack(t, env("unbuilt")); exitcode.Of(err) != 1 || !strings.Contains(logs, "error: Dockerfile:19: COPY source gone.txt is not in the build context") {
		t.Fatalf("TARGET=unbuilt: exit %d, %v\n%s", exitcode.Of(err), err, logs)
	}
	cfg := load(t, env("first"))
	var logs bytes.Buffer
	log := progress.New(&logs, "plain")
	client, err := NewClient(cfg.API, log)
	if err != nil {
		t.Fatal(err)
	}
	packed, err := Pack(ctx, cfg.Pack, "", log)
	if err != nil {
		t.Fatalf("context: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "warning: Dockerfile:19: COPY source gone.txt is not in the build context; stage unbuilt is not built for TARGET=first\n") {
		t.Fatalf("no warning:\n%s", logs.String())
	}
	built, err := Send(ctx, client, packed, cfg.API, cfg.Send, "", log)
	if err != nil {
		t.Fatalf("upload: the stage TARGET does not need was built: %v\n%s\nserver:\n%s", err, logs.String(), serverLog.String())
	}
	out, err := exec.CommandContext(ctx, "docker", "run", "--rm", "--network", "none", built.Image, "/bin/busybox", "cat", "/stage").CombinedOutput()
	if got, want := strings.TrimSpace(string(out)), "first|from issue9b|"+sha; err != nil || got != want {
		t.Fatalf("%s holds /stage %q (%v), want %q", built.Image, got, err, want)
	}
}
