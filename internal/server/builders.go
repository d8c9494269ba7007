package server

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/runtimebuild/runtimebuild/internal/docker"
	"github.com/runtimebuild/runtimebuild/internal/preflight"
)

// CheckBuilder builds nothing: it unpacks the upload and checks it as a builder would (the
// Dockerfile parses, its sources exist; an image archive's manifest names files it holds).
type CheckBuilder struct{}

// Build checks the job and says that nothing was built.
func (CheckBuilder) Build(ctx context.Context, job *Job, log io.Writer) (string, error) {
	dir, err := job.Unpack(ctx)
	if err != nil {
		return "", fmt.Errorf("unpacking: %w", err)
	}
	if job.Kind == KindImage {
		err = checkImage(dir)
	} else {
		err = checkContext(dir, job.Target, log)
	}
	if err != nil {
		return "", err
	}
	fmt.Fprintf(log, "check builder: the %s is sound; nothing was built (SERVE_BUILDER=check)\n", job.Kind)
	return job.TargetImage, nil
}

// ImageExists is always false: the check builder keeps no images.
func (CheckBuilder) ImageExists(context.Context, string) (bool, error) { return false, nil }

// Note says what the check builder's SUCCESS means.
func (CheckBuilder) Note() string { return "checked only: SERVE_BUILDER=check builds nothing" }

func checkContext(dir, target string, log io.Writer) error {
	df, err := readInside(dir, "Dockerfile", 16<<20)
	if err != nil {
		return fmt.Errorf("reading the Dockerfile: %w", err)
	}
	files, err := contextFiles(dir)
	if err != nil {
		return err
	}
	rep := preflight.Check(df, preflight.Context{Files: files, Target: target})
	if rep.OK() {
		fmt.Fprintf(log, "Dockerfile stages: %s\n", strings.Join(rep.Stages, ", "))
		return nil
	}
	var msgs []string
	for _, p := range rep.Problems {
		fmt.Fprintln(log, p)
		msgs = append(msgs, p.String())
	}
	return errors.New(strings.Join(msgs, "; "))
}

// contextFiles lists the unpacked context as a builder sees it: without what its own
// .dockerignore excludes.
func contextFiles(dir string) ([]string, error) {
	var patterns []string
	if b, err := readInside(dir, ".dockerignore", 16<<20); err == nil || !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			patterns, err = ignorefile.ReadAll(bytes.NewReader(b))
		}
		if err != nil {
			return nil, err
		}
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf(".dockerignore: %w", err)
	}
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if ok, _ := pm.MatchesOrParentMatches(rel); ok {
			return nil
		}
		files = append(files, rel)
		return nil
	})
	return files, err
}

// checkImage checks that manifest.json parses and names files the archive holds.
func checkImage(dir string) error {
	b, err := readInside(dir, "manifest.json", maxManifest)
	if err != nil {
		return err
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(b, &manifest); err != nil || len(manifest) == 0 {
		return fmt.Errorf("manifest.json is not a docker save manifest: %v", err)
	}
	for _, m := range manifest {
		for _, f := range append([]string{m.Config}, m.Layers...) {
			if _, err := statInside(dir, f); err != nil {
				return fmt.Errorf("manifest.json names %s, which the archive does not hold", f)
			}
		}
	}
	return nil
}

// DockerBuilder builds with the local Docker engine.
type DockerBuilder struct{}

// Build builds a context (streamed from the upload, with --target when the Dockerfile has that
// stage) or loads an image archive, and applies every tag.
func (DockerBuilder) Build(ctx context.Context, job *Job, log io.Writer) (string, error) {
	tags := append([]string{job.TargetImage}, job.Tags...)
	if job.Kind == KindImage {
		images, err := docker.Load(ctx, job.Archive, log)
		if err != nil {
			return "", err
		}
		for _, t := range tags {
			if err := docker.Tag(ctx, images[0], t); err != nil {
				return "", err
			}
		}
		return job.TargetImage, nil
	}
	target := ""
	if job.Target != "" {
		stages, err := stagesOf(ctx, job)
		if err != nil {
			return "", err
		}
		for _, s := range stages {
			if strings.EqualFold(s, job.Target) {
				target = job.Target
			}
		}
		if target == "" {
			fmt.Fprintf(log, "the Dockerfile has no stage %q: building its last stage\n", job.Target)
		}
	}
	f, err := os.Open(job.Archive)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := docker.Build(ctx, f, target, tags, log); err != nil {
		return "", err
	}
	return job.TargetImage, nil
}

// ImageExists asks the engine.
func (DockerBuilder) ImageExists(ctx context.Context, image string) (bool, error) {
	return docker.ImageExists(ctx, image)
}

// DescribeImage tells when the engine got image and its size.
func (DockerBuilder) DescribeImage(ctx context.Context, image string) (ImageInfo, error) {
	img, err := docker.Inspect(ctx, image)
	if err != nil {
		return ImageInfo{}, err
	}
	return ImageInfo{UploadTime: img.Created.UTC().Format(time.RFC3339), SizeBytes: img.Size}, nil
}

// stagesOf reads the Dockerfile from the archive and lists its stages.
func stagesOf(ctx context.Context, job *Job) ([]string, error) {
	var df []byte
	err := walkArchive(ctx, job.Archive, job.MaxUnpacked, func(name string, h *tar.Header, r io.Reader) error {
		if name == "Dockerfile" && h.Typeflag == tar.TypeReg {
			var err error
			df, err = io.ReadAll(io.LimitReader(r, 1<<20))
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return preflight.Check(df, preflight.Context{}).Stages, nil
}
