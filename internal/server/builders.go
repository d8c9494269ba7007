package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/runtimebuild/runtimebuild/internal/buildkit"
	"github.com/runtimebuild/runtimebuild/internal/docker"
	"github.com/runtimebuild/runtimebuild/internal/preflight"
)

// CheckBuilder builds nothing: it unpacks the upload and checks it as a builder would (the
// Dockerfile parses, its sources exist; an image archive's manifest names files it holds).
type CheckBuilder struct {
	Name string // how its messages name it (the setting that chose it); "the check builder" when empty
}

func (c CheckBuilder) name() string {
	if c.Name == "" {
		return "the check builder"
	}
	return c.Name
}

// Build checks the job and says that nothing was built.
func (c CheckBuilder) Build(ctx context.Context, job *Job, log io.Writer) (string, error) {
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
	fmt.Fprintf(log, "check builder: the %s is sound; nothing was built (%s)\n", job.Kind, c.name())
	return job.TargetImage, nil
}

// ImageExists is always false: the check builder keeps no images.
func (CheckBuilder) ImageExists(context.Context, string) (bool, error) { return false, nil }

// Note says what the check builder's SUCCESS means.
func (c CheckBuilder) Note() string { return "checked only: " + c.name() + " builds nothing" }

func checkContext(dir, target string, log io.Writer) error {
	df, err := readInside(dir, "Dockerfile", 16<<20)
	if err != nil {
		return fmt.Errorf("reading the Dockerfile: %w", err)
	}
	files, err := contextFiles(dir)
	if err != nil {
		return err
	}
	rep := preflight.Check(df, preflight.Context{Files: files, Target: target, TargetSetting: "target"})
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

// The builders at the seam.
var (
	_ Builder        = CheckBuilder{}
	_ Builder        = (*DockerBuilder)(nil)
	_ ImageDescriber = (*DockerBuilder)(nil)
	_ Builder        = (*BuildkitBuilder)(nil)
	_ ImageDescriber = (*BuildkitBuilder)(nil)
)

// DockerBuilder builds with the BuildKit inside the Docker Engine (through the engine's API, as
// buildx's docker driver does) and exports the image into the engine under the target name and
// every tag. Image archives are loaded into the engine and tagged.
type DockerBuilder struct {
	Engine *docker.Engine
}

// Build builds the job's context (only the stages its target needs) or loads its image archive.
func (d *DockerBuilder) Build(ctx context.Context, job *Job, log io.Writer) (string, error) {
	names := append([]string{job.TargetImage}, job.Tags...)
	if job.Kind == KindImage {
		f, err := os.Open(job.Archive)
		if err != nil {
			return "", err
		}
		defer f.Close()
		images, err := d.Engine.Load(ctx, f, log)
		if err != nil {
			return "", err
		}
		for _, n := range names {
			if err := d.Engine.Tag(ctx, images[0], n); err != nil {
				return "", err
			}
		}
		return job.TargetImage, nil
	}
	c, err := buildkit.Engine(ctx, d.Engine)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return job.TargetImage, solveJob(ctx, c, job, buildkit.MobyExport(names), log)
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

// BuildkitBuilder builds on a buildkitd (BUILDKIT_HOST) and pushes the image to the target
// image's registry under every name; /image_exists then asks that registry. Plain HTTP is used
// only for registries on this machine's loopback.
type BuildkitBuilder struct {
	Daemon buildkit.Daemon
}

// Build builds the job's context on the daemon and pushes it, or pushes the job's image archive.
func (b *BuildkitBuilder) Build(ctx context.Context, job *Job, log io.Writer) (string, error) {
	names := append([]string{job.TargetImage}, job.Tags...)
	refs := make([]name.Reference, 0, len(names))
	for _, n := range names {
		ref, err := name.ParseReference(n)
		if err != nil {
			return "", fmt.Errorf("%q is not an image reference: %w", n, err)
		}
		refs = append(refs, ref)
	}
	if job.Kind == KindImage {
		return job.TargetImage, pushArchive(ctx, job, refs, log)
	}
	c, err := b.Daemon.Connect(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return job.TargetImage, solveJob(ctx, c, job, buildkit.PushExport(names), log)
}

// ImageExists asks the image's registry.
func (b *BuildkitBuilder) ImageExists(ctx context.Context, image string) (bool, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return false, nil // no such name can exist
	}
	_, err = remote.Head(ref, registryOptions(ctx)...)
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusNotFound || hasCode(terr, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode)) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("asking %s for %s: %w", ref.Context().RegistryStr(), image, err)
	}
	return true, nil
}

// DescribeImage tells when the image was made (its config's created time) and its size (config
// and layers, compressed, as the registry stores them).
func (b *BuildkitBuilder) DescribeImage(ctx context.Context, image string) (ImageInfo, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return ImageInfo{}, err
	}
	img, err := remote.Image(ref, registryOptions(ctx)...)
	if err != nil {
		return ImageInfo{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return ImageInfo{}, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return ImageInfo{}, err
	}
	size := m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return ImageInfo{UploadTime: cfg.Created.UTC().Format(time.RFC3339), SizeBytes: size}, nil
}

func hasCode(terr *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range terr.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

// registryOptions use this machine's registry credentials, and plain HTTP only on loopback.
func registryOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithTransport(loopbackHTTPOnly{remote.DefaultTransport}),
	}
}

// loopbackHTTPOnly refuses plain HTTP to any host but this machine's loopback (go-containerregistry
// would also fall back to it for private-range addresses).
type loopbackHTTPOnly struct{ next http.RoundTripper }

func (t loopbackHTTPOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !buildkit.IsLoopback(r.URL.Host) {
		return nil, fmt.Errorf("refusing plain HTTP to %s: only registries on loopback are reached without TLS", r.URL.Host)
	}
	return t.next.RoundTrip(r)
}

// pushArchive pushes a `docker save` archive's image under every name.
func pushArchive(ctx context.Context, job *Job, refs []name.Reference, log io.Writer) error {
	plain := filepath.Join(job.Dir, "image.tar")
	if err := gunzipTo(job.Archive, plain); err != nil {
		return fmt.Errorf("reading the image archive: %w", err)
	}
	img, err := tarball.ImageFromPath(plain, nil)
	if err != nil {
		return fmt.Errorf("reading the image archive: %w", err)
	}
	for _, ref := range refs {
		fmt.Fprintf(log, "pushing %s\n", ref)
		if err := remote.Write(ref, img, registryOptions(ctx)...); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
	}
	return nil
}

// gunzipTo writes the archive uncompressed (tarball reads its members by seeking in a plain tar).
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

// solveJob unpacks the job's context and builds its target stage (or, when the Dockerfile has
// no such stage, its last) on c.
func solveJob(ctx context.Context, c *bkclient.Client, job *Job, export bkclient.ExportEntry, log io.Writer) error {
	dir, err := job.Unpack(ctx)
	if err != nil {
		return fmt.Errorf("unpacking: %w", err)
	}
	target, err := chooseStage(dir, job.Target, log)
	if err != nil {
		return err
	}
	_, err = buildkit.Solve(ctx, c, buildkit.Build{ContextDir: dir, Target: target, Export: export}, log)
	return err
}

// chooseStage is the stage to build: the one the client named when the Dockerfile has it, else
// "" (the last stage).
func chooseStage(dir, want string, log io.Writer) (string, error) {
	if want == "" {
		return "", nil
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	df, err := root.ReadFile("Dockerfile")
	if err != nil {
		return "", fmt.Errorf("reading the Dockerfile: %w", err)
	}
	for _, s := range preflight.Check(df, preflight.Context{}).Stages {
		if strings.EqualFold(s, want) {
			return s, nil
		}
	}
	fmt.Fprintf(log, "the Dockerfile has no stage %q: building its last stage\n", want)
	return "", nil
}
