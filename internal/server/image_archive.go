package server

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/runtimebuild/runtimebuild/internal/docker"
)

// archiveImage reads the image of an uploaded `docker save` archive. Only its content is used:
// the names its manifest.json gives (RepoTags) never reach a registry or the engine.
func archiveImage(job *Job) (v1.Image, error) {
	plain := filepath.Join(job.Dir, "image.tar")
	if err := gunzipTo(job.Archive, plain); err != nil {
		return nil, fmt.Errorf("reading the image archive: %w", err)
	}
	img, err := tarball.ImageFromPath(plain, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the image archive: %w", err)
	}
	return img, nil
}

// loadArchive loads the image of an uploaded archive into the engine under names alone: the
// archive the engine reads is written anew, its manifest naming exactly those.
func loadArchive(ctx context.Context, engine *docker.Engine, job *Job, names []string, log io.Writer) error {
	img, err := archiveImage(job)
	if err != nil {
		return err
	}
	refs := map[name.Reference]v1.Image{}
	for _, n := range names {
		tag, err := name.NewTag(n)
		if err != nil {
			return fmt.Errorf("%q is not a tag: %w", n, err)
		}
		refs[tag] = img
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarball.MultiRefWrite(refs, pw)) }()
	err = engine.Load(ctx, pr, log)
	pr.CloseWithError(errors.New("the engine stopped reading")) // ends the writer if the load failed early
	return err
}

// gunzipTo writes the archive uncompressed (tarball reads its members by seeking in a plain tar).
// It sets no limit of its own: inspect has already walked this archive within the job's limits.
func gunzipTo(archive, dst string) error {
	in, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, zr); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
