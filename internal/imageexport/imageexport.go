// Package imageexport writes an existing image as a gzip-compressed `docker load` archive,
// from the local Docker engine or straight from its registry, streaming all the way.
package imageexport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/pgzip"

	"github.com/runtimebuild/runtimebuild/internal/docker"
	"github.com/runtimebuild/runtimebuild/internal/outputdir"
	"github.com/runtimebuild/runtimebuild/internal/progress"
)

// Source writes an image in the format `docker load` reads (uncompressed tar) to w.
type Source interface {
	Export(ctx context.Context, ref string, w io.Writer) error
}

// Logger receives warnings; *progress.Log is one.
type Logger = progress.Logger

// The sources at the seam.
var (
	_ Source = Docker{}
	_ Source = Registry{}
)

// ReferenceError is an image reference that does not parse.
type ReferenceError struct {
	Ref string
	Err error
}

func (e *ReferenceError) Error() string {
	return fmt.Sprintf("%q is not a valid image reference: %v", e.Ref, e.Err)
}

// Unwrap returns the parser's error.
func (e *ReferenceError) Unwrap() error { return e.Err }

// PlatformError is a Registry.Platform that does not parse.
type PlatformError struct {
	Platform string
	Err      error
}

func (e *PlatformError) Error() string { return fmt.Sprintf("platform %q: %v", e.Platform, e.Err) }

// Unwrap returns the parser's error.
func (e *PlatformError) Unwrap() error { return e.Err }

// NotLocalError is an image Docker.Export was to take from the engine without pulling, and
// the engine does not have.
type NotLocalError struct{ Ref string }

func (e *NotLocalError) Error() string {
	return fmt.Sprintf("image %s is not in the local engine, and pulling is off", e.Ref)
}

// ParseReference checks an image reference; a bad one is a *ReferenceError.
func ParseReference(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, &ReferenceError{Ref: ref, Err: err}
	}
	return r, nil
}

// Docker exports through the local engine's API: pull (unless Pull is false), then save.
type Docker struct {
	Engine *docker.Engine
	Pull   bool
	Log    Logger
}

// Export pulls and saves ref. A failed pull of an image the engine already has is a warning.
func (d Docker) Export(ctx context.Context, ref string, w io.Writer) error {
	if err := d.Engine.Ping(ctx); err != nil {
		return err
	}
	if d.Pull {
		if err := d.Engine.Pull(ctx, ref, io.Discard); err != nil { // its progress; its error says what went wrong
			if ctx.Err() != nil {
				return ctx.Err()
			}
			local, lerr := d.Engine.Exists(ctx, ref)
			if lerr != nil || !local {
				return fmt.Errorf("image %s: %w", ref, err)
			}
			d.Log.Warnf("%v; using the local image %s", err, ref)
		}
	} else if local, err := d.Engine.Exists(ctx, ref); err != nil {
		return err
	} else if !local {
		return &NotLocalError{Ref: ref}
	}
	return d.Engine.Save(ctx, ref, w)
}

// Registry reads the image from its registry with the user's Docker credentials; no daemon.
type Registry struct {
	Platform string         // os/arch[/variant], as in linux/amd64
	Keychain authn.Keychain // nil: authn.DefaultKeychain (~/.docker/config.json and helpers)
}

// Export writes the image for the platform as a docker load archive, layer by layer from the
// registry to w.
func (r Registry) Export(ctx context.Context, ref string, w io.Writer) error {
	parsed, err := ParseReference(ref)
	if err != nil {
		return err
	}
	platform, err := v1.ParsePlatform(r.Platform)
	if err != nil {
		return &PlatformError{Platform: r.Platform, Err: err}
	}
	keychain := r.Keychain
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	img, err := remote.Image(parsed, remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain), remote.WithPlatform(*platform))
	if err != nil {
		return describeRegistryError(ref, err)
	}
	if err := tarball.Write(parsed, img, w); err != nil {
		return fmt.Errorf("exporting %s: %w", ref, describeRegistryError(ref, err))
	}
	return nil
}

// describeRegistryError says in one line what the registry refused.
func describeRegistryError(ref string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case 401, 403:
			return fmt.Errorf("the registry refused the credentials for %s (docker login to it, or check ~/.docker/config.json): %s", ref, oneLine(terr.Error()))
		case 404:
			return fmt.Errorf("image %s does not exist in its registry", ref)
		}
	}
	return fmt.Errorf("reading %s from its registry: %s", ref, oneLine(err.Error()))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// WriteArchive exports ref through src into a gzip file in dir, compressed in parallel as it
// streams; the file is removed on failure. It returns the file's path; the caller removes it.
// progress, when not nil, is written the uncompressed bytes as they come (a progress.Meter
// counts them).
func WriteArchive(ctx context.Context, src Source, ref, dir string, progress io.Writer) (string, error) {
	f, err := outputdir.CreateTemp(dir)
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			f.Discard()
		}
	}()
	gz := pgzip.NewWriter(f)
	var w io.Writer = gz
	if progress != nil {
		w = io.MultiWriter(gz, progress)
	}
	if err := src.Export(ctx, ref, w); err != nil {
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	ok = true
	return f.Name(), nil
}
