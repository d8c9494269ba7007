// Package dockertest gates tests on a Docker engine: they run for real where `docker info`
// answers, skip loudly where it does not, and fail instead of skipping when
// RUNTIMEBUILD_REQUIRE_DOCKER=1 (set by .ci/run where an engine answers).
package dockertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Require skips or fails t when no Docker engine answers.
func Require(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err == nil && len(out) > 0 {
		return
	}
	why := "it printed no server version"
	if err != nil {
		why = err.Error()
	}
	msg := "NO DOCKER ENGINE: `docker info` failed (" + why + "): " + string(out) + "; this test of the real engine did not run"
	if os.Getenv("RUNTIMEBUILD_REQUIRE_DOCKER") == "1" {
		t.Fatal(msg + " (RUNTIMEBUILD_REQUIRE_DOCKER=1)")
	}
	t.Skip(msg)
}
