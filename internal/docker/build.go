package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	controlapi "github.com/moby/buildkit/api/services/control"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// traceID marks the engine's /build messages that carry BuildKit's progress: each one's aux is
// an encoded controlapi.StatusResponse.
const traceID = "moby.buildkit.trace"

// BuildOptions are the settings of one Build.
type BuildOptions struct {
	Tags   []string // the names the image gets in the engine
	Target string   // the stage to build; empty: the last
	// Pull makes BuildKit take every image the Dockerfile reads from its registry
	// (image-resolve-mode=pull), never from the engine's own images.
	Pull bool
	// SessionID names a BuildKit session the caller runs on the engine's /session (registry
	// credentials); empty: none, images are pulled anonymously.
	SessionID string
}

// BuildError is a build the engine ran and reported failed.
type BuildError struct{ Message string }

func (e *BuildError) Error() string { return e.Message }

// Build sends a tar build context (Dockerfile at its root) to the engine's /build, which hands it
// to the engine's BuildKit (builder version 2) as an uploaded context: the engine unpacks it, no
// file travels on its own. BuildKit's progress goes to statuses, which Build closes before it
// returns. The image is stored in the engine under opts.Tags. A failed build is a *BuildError.
func (e *Engine) Build(ctx context.Context, tar io.Reader, opts BuildOptions, statuses chan *bkclient.SolveStatus) error {
	defer close(statuses)
	for _, t := range opts.Tags {
		if _, err := ParseImage(t); err != nil {
			return err
		}
	}
	res, err := e.api.ImageBuild(ctx, tar, client.ImageBuildOptions{
		Version: build.BuilderBuildKit, Tags: opts.Tags, Target: opts.Target, PullParent: opts.Pull,
		SessionID: opts.SessionID, Dockerfile: "Dockerfile", Remove: true,
	})
	if err != nil {
		return fmt.Errorf("building: %w", e.wrap(ctx, err))
	}
	defer res.Body.Close()
	return e.eachMessage(ctx, res.Body, "building", func(msg jsonstream.Message) error {
		if msg.Error != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &BuildError{Message: msg.Error.Message}
		}
		if msg.ID != traceID || msg.Aux == nil {
			return nil // the image's ID: the tags name it
		}
		var dt []byte // the aux is the encoded status as a JSON (base64) string
		if err := json.Unmarshal(*msg.Aux, &dt); err != nil {
			return fmt.Errorf("building: the engine's progress: %w", err)
		}
		var resp controlapi.StatusResponse
		if err := resp.UnmarshalVT(dt); err != nil {
			return fmt.Errorf("building: the engine's progress: %w", err)
		}
		select {
		case statuses <- bkclient.NewSolveStatus(&resp):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}
