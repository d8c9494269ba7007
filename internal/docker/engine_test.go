package docker_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	bkclient "github.com/moby/buildkit/client"

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

// A tar context sent to the real engine's /build is built by its BuildKit: the image gets the
// names asked for, BuildKit's progress arrives decoded, and a failing step is a *BuildError
// carrying the engine's message.
func TestTheRealEngineBuildsATarContextWithBuildKit(t *testing.T) {
	dockertest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := dockertest.Engine(t)
	ref := dockertest.FixtureImage(t) + "-built"
	t.Cleanup(func() { dockertest.RemoveImages(ref) })
	build := func(dockerfile string) ([]string, error) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for name, body := range map[string]string{"Dockerfile": dockerfile, "f.txt": "f\n"} {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
			io.WriteString(tw, body)
		}
		tw.Close()
		statuses := make(chan *bkclient.SolveStatus)
		var vertices []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			for st := range statuses {
				for _, v := range st.Vertexes {
					vertices = append(vertices, v.Name)
				}
			}
		}()
		err := e.Build(ctx, &buf, docker.BuildOptions{Tags: []string{ref}}, statuses)
		<-done
		return vertices, err
	}
	vertices, err := build("FROM scratch\nCOPY f.txt /\nLABEL built=tar\n")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(vertices, func(v string) bool { return strings.Contains(v, "COPY f.txt") }) {
		t.Fatalf("the progress names no COPY step: %q", vertices)
	}
	if img, err := e.Inspect(ctx, ref); err != nil || img.Labels["built"] != "tar" {
		t.Fatalf("the built image: %+v, %v", img, err)
	}
	_, err = build("FROM scratch\nCOPY absent.txt /\n")
	var failed *docker.BuildError
	if !errors.As(err, &failed) || !strings.Contains(failed.Message, "absent.txt") {
		t.Fatalf("a failing build: %v, want a *BuildError naming absent.txt", err)
	}
}
