package docker_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/docker"
	"github.com/runtimebuild/runtimebuild/internal/dockertest"
)

// The engine of this machine through the moby client: it negotiates down to the engine's API,
// says when an image is missing, and tags, saves, loads and removes.
func TestTheRealEngineTagsSavesLoadsAndRemoves(t *testing.T) {
	dockertest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := docker.NewEngine(docker.EngineConfig{Host: os.Getenv("DOCKER_HOST")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	ref := dockertest.FixtureImage(t)
	if _, err := e.Inspect(ctx, ref+"-absent"); !errors.Is(err, docker.ErrNoSuchImage) {
		t.Fatalf("inspecting a missing image: %v, want ErrNoSuchImage", err)
	}
	other := ref + "-other"
	if err := e.Tag(ctx, ref, other); err != nil {
		t.Fatal(err)
	}
	var saved bytes.Buffer
	if err := e.Save(ctx, other, &saved); err != nil || saved.Len() == 0 {
		t.Fatalf("save: %d bytes, %v", saved.Len(), err)
	}
	if err := e.Remove(ctx, other); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.Exists(ctx, other); ok || err != nil {
		t.Fatalf("after Remove: exists %v, %v", ok, err)
	}
	var log bytes.Buffer
	if err := e.Load(ctx, &saved, &log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Remove(context.Background(), other) })
	if ok, err := e.Exists(ctx, other); !ok || err != nil {
		t.Fatalf("after Load: exists %v, %v (log %q)", ok, err, log.String())
	}
}
