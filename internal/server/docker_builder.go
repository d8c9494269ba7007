package server

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/buildkit"
	"github.com/runtimebuild/runtimebuild/internal/docker"
)

// DockerBuilder builds with the BuildKit inside the Docker Engine (through the engine's API, as
// buildx's docker driver does) and exports the image into the engine under the target name and
// every tag. Image archives are loaded into the engine under those names alone.
type DockerBuilder struct {
	Engine *docker.Engine
}

// Build builds the job's context (only the stages its target needs) or loads its image archive.
func (d *DockerBuilder) Build(ctx context.Context, job *Job, log io.Writer) (string, error) {
	names := append([]string{job.TargetImage}, job.Tags...)
	if job.Kind == KindImage {
		return job.TargetImage, loadArchive(ctx, d.Engine, job, names, log)
	}
	c, err := buildkit.Engine(ctx, d.Engine)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return job.TargetImage, solveJob(ctx, job, buildkit.Build{Export: buildkit.MobyExport(names)}, log,
		func(ctx context.Context, b buildkit.Build, log io.Writer) (buildkit.Report, error) {
			return buildkit.Solve(ctx, c, b, log)
		})
}

// ImageExists asks the engine; a name that is no image reference does not exist.
func (d *DockerBuilder) ImageExists(ctx context.Context, image string) (bool, error) {
	_, err := d.Engine.Inspect(ctx, image)
	if errors.Is(err, docker.ErrNoSuchImage) {
		return false, nil
	}
	return err == nil, err
}

// DescribeImage tells when the engine got image and its size.
func (d *DockerBuilder) DescribeImage(ctx context.Context, image string) (ImageInfo, error) {
	img, err := d.Engine.Inspect(ctx, image)
	if err != nil {
		return ImageInfo{}, err
	}
	return ImageInfo{UploadTime: img.Created.UTC().Format(time.RFC3339), SizeBytes: img.Size}, nil
}
