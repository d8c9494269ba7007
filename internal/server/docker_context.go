package server

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"testing/fstest"

	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/patternmatcher"

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
	"github.com/runtimebuild/runtimebuild/internal/buildkit"
	"github.com/runtimebuild/runtimebuild/internal/docker"
	"github.com/runtimebuild/runtimebuild/internal/targz"
)

// ignoreFiles are the members BuildKit may read its exclusions from (buildctx.ReadIgnore).
var ignoreFiles = []string{".dockerignore", "Dockerfile.dockerignore"}

// streamed is what a first read of a context archive tells, without unpacking it: the Dockerfile
// and what the context excludes. The docker builder then streams the archive to the engine,
// which unpacks it itself (streamTo).
type streamed struct {
	dockerfile []byte
	excluded   *patternmatcher.PatternMatcher
	// unpack, when set, says why this archive is built from an unpacked context instead: what
	// only a file system resolves (a Dockerfile or ignore file that is a link, members written
	// through a link, a hard link to an excluded file).
	unpack string
}

// readUpload reads the job's context archive once through targz (every member checked as
// unpacking checks it): the Dockerfile, the ignore file, the hard links.
func readUpload(ctx context.Context, job *Job) (streamed, error) {
	var up streamed
	ignores := fstest.MapFS{} // what buildctx.ReadIgnore reads: only the regular ignore files
	hardLinks := map[string]string{}
	symlinks, parents := map[string]bool{}, map[string]bool{}
	_, err := walk(ctx, job.Archive, job.MaxUnpacked, maxMembers, func(m targz.Member, r io.Reader) error {
		h := m.Header
		for d := path.Dir(m.Name); d != "." && !parents[d]; d = path.Dir(d) {
			parents[d] = true
		}
		switch {
		case m.Name == "Dockerfile" && h.Typeflag == tar.TypeReg:
			b, err := io.ReadAll(r)
			up.dockerfile = b
			return err
		case m.Name == "Dockerfile":
			up.unpack = "the Dockerfile is not a regular file"
		case (m.Name == ignoreFiles[0] || m.Name == ignoreFiles[1]) && h.Typeflag == tar.TypeReg:
			b, err := targz.ReadAtMost(r, 16<<20)
			if err != nil {
				return fmt.Errorf("reading %s: %w", m.Name, err)
			}
			ignores[m.Name] = &fstest.MapFile{Data: b, Mode: 0o644}
		case m.Name == ignoreFiles[0] || m.Name == ignoreFiles[1]:
			up.unpack = m.Name + " is not a regular file"
		case h.Typeflag == tar.TypeSymlink:
			symlinks[m.Name] = true
		case h.Typeflag == tar.TypeLink:
			target, err := targz.CleanName(h.Linkname)
			if err != nil {
				return err // checked already: not reached
			}
			hardLinks[m.Name] = target
			for d := path.Dir(target); d != "." && !parents[d]; d = path.Dir(d) {
				parents[d] = true // a link read through another link, as a member written through one
			}
		}
		return nil
	})
	if err != nil || up.unpack != "" {
		return up, err
	}
	// A member written through a link lands elsewhere than its name says (d -> ., then
	// d/Dockerfile): only names that are where they say are checked and excluded by name.
	for l := range symlinks {
		if parents[l] {
			up.unpack = fmt.Sprintf("members are written through the link %s", quoteName(l))
			return up, nil
		}
	}
	if up.dockerfile == nil {
		up.unpack = "the archive has no Dockerfile"
		return up, nil
	}
	ignore, err := buildctx.ReadIgnore(ignores, "Dockerfile")
	if err != nil {
		return up, err
	}
	if up.excluded, err = patternmatcher.New(ignore.Strings()); err != nil {
		return up, fmt.Errorf("%s: %w", ignore.Path, err)
	}
	for link, target := range hardLinks {
		if !up.excludes(link) && up.excludes(target) {
			up.unpack = fmt.Sprintf("%s is a hard link to %s, which %s excludes", quoteName(link), quoteName(target), ignore.Path)
			return up, nil
		}
	}
	return up, nil
}

// excludes reports whether the ignore file leaves name out of the context; never the
// Dockerfile, which the builder reads from the context.
func (up streamed) excludes(name string) bool {
	if name == "Dockerfile" {
		return false
	}
	ok, _ := up.excluded.MatchesOrParentMatches(name)
	return ok
}

// streamTo writes the job's context archive to w as a plain tar, member by member as targz
// checks them: without what the ignore file excludes, with the Dockerfile df in place of the
// archive's, and with the modes unpacking gives (0644 or 0755, owned by root).
func (up streamed) streamTo(ctx context.Context, job *Job, df []byte, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	tw := tar.NewWriter(bw)
	_, err := walk(ctx, job.Archive, job.MaxUnpacked, maxMembers, func(m targz.Member, r io.Reader) error {
		if up.excludes(m.Name) {
			return nil
		}
		src := m.Header
		h := &tar.Header{Name: m.Name, Typeflag: src.Typeflag, Mode: 0o644, ModTime: src.ModTime, Format: tar.FormatPAX}
		switch src.Typeflag {
		case tar.TypeDir:
			h.Name, h.Mode = m.Name+"/", 0o755
		case tar.TypeSymlink:
			h.Linkname, h.Mode = src.Linkname, 0o777
		case tar.TypeLink:
			h.Linkname, _ = targz.CleanName(src.Linkname)
		case tar.TypeReg:
			h.Size = src.Size
			if src.Mode&0o111 != 0 {
				h.Mode = 0o755
			}
			if m.Name == "Dockerfile" {
				h.Size, r = int64(len(df)), bytes.NewReader(df)
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			_, err := io.Copy(tw, r)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// errBuildEnded ends the sending of a context the engine no longer reads.
var errBuildEnded = errors.New("the build ended")

// buildUpload builds the context archive through the engine's /build: its Dockerfile held to
// the trust boundary (checkDockerfile, resolveBases) and the archive streamed to the engine as
// one tar, which the engine unpacks for its BuildKit (no unpacking here, no file sent on its own).
func (d *DockerBuilder) buildUpload(ctx context.Context, job *Job, up streamed, names []string, log io.Writer) error {
	srcs, df, model, err := checkDockerfile(ctx, up.dockerfile, job)
	if err != nil {
		return err
	}
	target := chooseStage(model, job.Target, log)
	attrs, err := d.resolveBases(ctx, job.Trust, srcs, log)
	if err != nil {
		return err
	}
	session, stop, err := buildkit.EngineSession(ctx, d.Engine, job.Trust.Registry())
	if err != nil {
		return err
	}
	defer stop()
	pr, pw := io.Pipe()
	sent := make(chan error, 1)
	go func() {
		err := up.streamTo(ctx, job, df, pw)
		pw.CloseWithError(err)
		sent <- err
	}()
	opts := docker.BuildOptions{Tags: names, Target: target, Pull: attrs["image-resolve-mode"] == "pull", SessionID: session}
	rep, err := buildkit.Follow(ctx, log, func(statuses chan *bkclient.SolveStatus) error {
		return d.Engine.Build(ctx, pr, opts, statuses)
	})
	pr.CloseWithError(errBuildEnded)
	serr := <-sent
	job.Telemetry = telemetry(rep)
	if serr != nil && !errors.Is(serr, errBuildEnded) && !errors.Is(serr, io.ErrClosedPipe) {
		return fmt.Errorf("sending the context to the engine: %w", serr)
	}
	return err
}
