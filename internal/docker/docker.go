// Package docker drives the Docker Engine: through its API (Engine: ping, inspect, load, tag,
// BuildKit's streams) and, for image export, through the docker CLI (bitfield/script via
// internal/command: pull, save).
package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/command"
)

// ErrNoEngine says that no Docker engine answers.
var ErrNoEngine = errors.New("no Docker engine answers (is the daemon running? is DOCKER_HOST right?)")

// Ping checks that an engine answers the docker CLI.
func Ping(ctx context.Context) error {
	out, err := command.Output(ctx, "docker", "version", "--format", "{{.Server.Version}}")
	if err != nil || strings.TrimSpace(string(out)) == "" {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w (docker version: %v)", ErrNoEngine, err)
	}
	return nil
}

// ImageExists reports whether the engine has image (asked through the docker CLI).
func ImageExists(ctx context.Context, image string) (bool, error) {
	if _, err := ParseImage(image); err != nil {
		return false, err
	}
	err := command.Stream(ctx, nil, io.Discard, "docker", "image", "inspect", "--format", "{{.Id}}", "--", image)
	var cerr *command.Error
	if errors.As(err, &cerr) && strings.Contains(strings.ToLower(cerr.Stderr), "no such image") {
		return false, nil
	}
	return err == nil, err
}

// Image is what the engine tells of an image it has.
type Image struct {
	ID      string
	Created time.Time
	Size    int64 // bytes
}

// Pull pulls image, with the engine's progress going to log.
func Pull(ctx context.Context, image string, log io.Writer) error {
	return command.Cmd{Stdout: log, Stderr: log}.Run(ctx, "docker", "pull", "--", image)
}

// Save streams `docker save image` to w.
func Save(ctx context.Context, image string, w io.Writer) error {
	return command.Cmd{Stdout: w}.Run(ctx, "docker", "save", "--", image)
}
