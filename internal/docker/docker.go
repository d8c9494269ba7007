// Package docker drives the Docker Engine through the docker CLI (bitfield/script via
// internal/command): ping, build, load, tag, pull, save, inspect.
package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/command"
)

// ErrNoEngine says that no Docker engine answers.
var ErrNoEngine = errors.New("no Docker engine answers (is the daemon running? is DOCKER_HOST right?)")

// Ping checks that an engine answers.
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

// ImageExists reports whether the engine has image.
func ImageExists(ctx context.Context, image string) (bool, error) {
	err := command.Stream(ctx, nil, io.Discard, "docker", "image", "inspect", "--format", "{{.Id}}", image)
	var cerr *command.Error
	if errors.As(err, &cerr) && strings.Contains(strings.ToLower(cerr.Stderr), "no such image") {
		return false, nil
	}
	return err == nil, err
}

// Image is what the engine tells of an image it has.
type Image struct {
	Created time.Time
	Size    int64 // bytes
}

// Inspect describes image.
func Inspect(ctx context.Context, image string) (Image, error) {
	out, err := command.Output(ctx, "docker", "image", "inspect", "--format", "{{.Created}} {{.Size}}", image)
	if err != nil {
		return Image{}, err
	}
	created, size, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	var img Image
	if img.Created, err = time.Parse(time.RFC3339Nano, created); err != nil {
		return Image{}, fmt.Errorf("docker image inspect %s: unexpected output %q", image, out)
	}
	if img.Size, err = strconv.ParseInt(size, 10, 64); err != nil {
		return Image{}, fmt.Errorf("docker image inspect %s: unexpected output %q", image, out)
	}
	return img, nil
}

// Build builds the gzip tar build context read from contextTarGz, tagging the result with
// every tag; target chooses the stage when not empty. Output goes to log.
func Build(ctx context.Context, contextTarGz io.Reader, target string, tags []string, log io.Writer) error {
	args := []string{"build", "--file", "Dockerfile"}
	if target != "" {
		args = append(args, "--target", target)
	}
	for _, t := range tags {
		args = append(args, "--tag", t)
	}
	args = append(args, "-")
	err := command.Cmd{Stdin: contextTarGz, Stdout: log, Stderr: log}.Run(ctx, "docker", args...)
	var cerr *command.Error
	if errors.As(err, &cerr) {
		// The build's own error, not the CLI's notice about its legacy builder (printed first).
		if msg := withoutNotices(cerr.Stderr); strings.TrimSpace(msg) != "" {
			return fmt.Errorf("docker build: %s", command.Summary(msg))
		}
		return fmt.Errorf("docker build: %w", cerr.Err)
	}
	return err
}

// withoutNotices drops the paragraph the docker CLI prints before every legacy build
// ("DEPRECATED: The legacy builder is deprecated ... https://docs.docker.com/go/buildx/").
func withoutNotices(stderr string) string {
	var kept []string
	notice := false
	for _, l := range strings.Split(stderr, "\n") {
		switch t := strings.TrimSpace(l); {
		case strings.HasPrefix(t, "DEPRECATED:"):
			notice = true
		case notice && t == "":
			notice = false
		case !notice:
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "\n")
}

var loaded = regexp.MustCompile(`(?m)^Loaded image(?: ID)?: (\S+)`)

// Load loads a docker save archive (gzip or not) and returns the images it named.
func Load(ctx context.Context, archive string, log io.Writer) ([]string, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out strings.Builder
	if err := (command.Cmd{Stdin: f, Stdout: io.MultiWriter(&out, log), Stderr: log}).Run(ctx, "docker", "load"); err != nil {
		return nil, err
	}
	var images []string
	for _, m := range loaded.FindAllStringSubmatch(out.String(), -1) {
		images = append(images, m[1])
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("docker load named no image: %s", strings.TrimSpace(out.String()))
	}
	return images, nil
}

// Tag gives image another name.
func Tag(ctx context.Context, image, tag string) error {
	_, err := command.Output(ctx, "docker", "tag", image, tag)
	return err
}

// Pull pulls image, with the engine's progress going to log.
func Pull(ctx context.Context, image string, log io.Writer) error {
	return command.Cmd{Stdout: log, Stderr: log}.Run(ctx, "docker", "pull", image)
}

// Save streams `docker save image` to w.
func Save(ctx context.Context, image string, w io.Writer) error {
	return command.Cmd{Stdout: w}.Run(ctx, "docker", "save", image)
}

// Remove removes the image names given (untag; layers go with the last name).
func Remove(ctx context.Context, images ...string) error {
	_, err := command.Output(ctx, "docker", append([]string{"rmi", "--force"}, images...)...)
	return err
}
