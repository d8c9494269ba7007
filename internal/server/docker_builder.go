package server

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	bkclient "github.com/moby/buildkit/client"

	"github.com/runtimebuild/runtimebuild/internal/buildkit"
	"github.com/runtimebuild/runtimebuild/internal/docker"
)

// DockerBuilder builds with the BuildKit inside the Docker Engine (through the engine's API, as
// buildx's docker driver does) and exports the image into the engine under the target name and
// every tag. Image archives are loaded into the engine under those names alone.
type DockerBuilder struct {
	Engine *docker.Engine
	// CacheMax (SERVE_CACHE_MAX) bounds the BuildKit cache serve's builds made in the engine, in
	// bytes: past it the least recently used of those records are pruned, never another one.
	// Zero: no bound.
	CacheMax int64
	// CacheMaxName is CacheMax as the log names it to the operator (the edge's wording).
	CacheMaxName string

	mu   sync.Mutex
	made map[string]bool // the engine's BuildKit cache records that appeared during serve's builds
}

// Build builds the job's context (only the stages its target needs) or loads its image archive.
// The context archive goes to the engine's /build as one tar, which the engine unpacks
// (buildUpload); only an archive whose Dockerfile or ignore file is a link, or that hard-links
// an excluded file, is unpacked here and sent file by file over the engine's session.
func (d *DockerBuilder) Build(ctx context.Context, job *Job, log io.Writer) (string, error) {
	names := append([]string{job.TargetImage}, job.Tags...)
	replaced := d.imagesUnder(ctx, names)
	defer d.removeDangling(replaced, log)
	if job.Kind == KindImage {
		return job.TargetImage, loadArchive(ctx, d.Engine, job, names, log)
	}
	c, err := buildkit.Engine(ctx, d.Engine)
	if err != nil {
		return "", err
	}
	defer c.Close()
	before, started := cacheRecords(ctx, c), time.Now()
	defer d.boundCache(c, before, started, log)
	up, err := readUpload(ctx, job)
	if err != nil {
		return "", fmt.Errorf("reading the context: %w", err)
	}
	if up.unpack == "" {
		return job.TargetImage, d.buildUpload(ctx, job, up, names, log)
	}
	fmt.Fprintf(log, "%s: unpacking the context here and sending it file by file\n", up.unpack)
	return job.TargetImage, solveJob(ctx, job, buildkit.Build{Export: buildkit.MobyExport(names)}, log,
		func(ctx context.Context, b buildkit.Build, srcs sources, log io.Writer) (buildkit.Report, error) {
			attrs, err := d.resolveBases(ctx, job.Trust, srcs, log)
			if err != nil {
				return buildkit.Report{}, err
			}
			maps.Copy(b.FrontendAttrs, attrs)
			return buildkit.Solve(ctx, c, b, log)
		})
}

// imagesUnder is the IDs of the images the names hold before a build gives them another.
func (d *DockerBuilder) imagesUnder(ctx context.Context, names []string) []string {
	var ids []string
	for _, n := range names {
		if img, err := d.Engine.Inspect(ctx, n); err == nil {
			ids = append(ids, img.ID)
		}
	}
	return ids
}

// removeDangling removes the images a build took their last name from: the engine keeps an
// image whose every name went (a dangling image) until someone removes it. One that still has
// a name, or that a container uses, stays: the engine refuses to remove it without force.
func (d *DockerBuilder) removeDangling(ids []string, log io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // the build's may have ended
	defer cancel()
	for _, id := range ids {
		if d.Engine.RemoveUnnamed(ctx, id) {
			fmt.Fprintf(log, "removed the image %s, which this build left without a name\n", id)
		}
	}
}

// cacheRecords is the IDs of the engine's BuildKit cache records; nil when it does not say.
func cacheRecords(ctx context.Context, c *bkclient.Client) map[string]bool {
	du, err := c.DiskUsage(ctx)
	if err != nil {
		return nil
	}
	ids := make(map[string]bool, len(du))
	for _, r := range du {
		ids[r.ID] = true
	}
	return ids
}

// boundCache counts the records that appeared during the build (absent before it and created
// after it started) as serve's, and prunes the least recently used of serve's records while they
// hold more than CacheMax. Records that existed before (other users' builds, or an earlier
// serve's) are never pruned. A build of another
// client of the engine running at the same time may have its new records counted as serve's.
func (d *DockerBuilder) boundCache(c *bkclient.Client, before map[string]bool, started time.Time, log io.Writer) {
	if before == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	du, err := c.DiskUsage(ctx)
	if err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.made == nil {
		d.made = map[string]bool{}
	}
	present := map[string]bool{}
	var ours []*bkclient.UsageInfo
	var size int64
	for _, r := range du {
		present[r.ID] = true
		if !before[r.ID] && !r.CreatedAt.Before(started) {
			d.made[r.ID] = true
		}
		if d.made[r.ID] {
			ours = append(ours, r)
			size += r.Size
		}
	}
	maps.DeleteFunc(d.made, func(id string, _ bool) bool { return !present[id] })
	if d.CacheMax <= 0 || size <= d.CacheMax {
		return
	}
	slices.SortFunc(ours, func(a, b *bkclient.UsageInfo) int { return lastUsed(a).Compare(lastUsed(b)) })
	var freed int64
	for _, r := range ours {
		if size-freed <= d.CacheMax {
			break
		}
		if r.InUse {
			continue
		}
		if err := c.Prune(ctx, nil, bkclient.PruneAll, bkclient.WithFilter([]string{"id==" + r.ID})); err == nil {
			freed += r.Size
			delete(d.made, r.ID)
			fmt.Fprintf(log, "pruned cache record %s (%s, %d bytes): this server's cache is over %s %d\n", r.ID, r.Description, r.Size, cmp.Or(d.CacheMaxName, "its bound"), d.CacheMax)
		}
	}
}

func lastUsed(r *bkclient.UsageInfo) time.Time {
	if r.LastUsedAt != nil {
		return *r.LastUsedAt
	}
	return r.CreatedAt
}

// ImageExists asks the engine; a name that is no image reference does not exist.
func (d *DockerBuilder) ImageExists(ctx context.Context, image string) (bool, error) {
	return d.Engine.Exists(ctx, image)
}

// DescribeImage tells when the engine got image and its size.
func (d *DockerBuilder) DescribeImage(ctx context.Context, image string) (ImageInfo, error) {
	img, err := d.Engine.Inspect(ctx, image)
	if err != nil {
		return ImageInfo{}, err
	}
	return ImageInfo{UploadTime: img.Created.UTC().Format(time.RFC3339), SizeBytes: img.Size}, nil
}

// BaseImageError is an image a Dockerfile reads that the docker builder will not take from the
// engine: it is not under the registry prefix and its registry did not give it, or it cannot be
// known before the build, or it carries ONBUILD triggers.
type BaseImageError struct {
	Use   imageUse
	Why   string
	OptIn string // the operator's opt-in that lets the engine's images serve (Trust.LocalImagesName)
}

func (e *BaseImageError) Error() string {
	return fmt.Sprintf("Dockerfile %s: %s (bases come from registries, or are images under the registry prefix%s)", e.Use, e.Why, e.optIn())
}

// resolveBases decides where the engine's BuildKit takes the images the Dockerfile reads. With
// none under the prefix, every one is pulled from its registry (image-resolve-mode=pull), never
// taken from what the engine holds. Images under the prefix (serve built them) are only in the
// engine, so then the engine resolves: each image outside the prefix is first pulled from its
// registry, anonymously, so that the engine's copy is the registry's; one that cannot be known
// before the build is refused, and so is a prefix image with ONBUILD triggers (they could read
// any local image). A # syntax= frontend is always pulled first: BuildKit resolves it locally
// whatever the mode. SERVE_LOCAL_IMAGES=true leaves it all to the engine. A heredoc is refused
// first, whatever the opt-ins: the engine's frontend does not read them.
func (d *DockerBuilder) resolveBases(ctx context.Context, trust Trust, srcs sources, log io.Writer) (map[string]string, error) {
	if err := refuseHeredocs(srcs); err != nil { // the engine's frontend would run their lines as instructions
		return nil, err
	}
	if trust.LocalImages {
		return nil, nil
	}
	var prefixed, outside, unknown []imageUse
	for _, u := range srcs.Images {
		switch {
		case u.Ref == "":
			unknown = append(unknown, u)
		case trust.Under(u.Ref):
			prefixed = append(prefixed, u)
		default:
			outside = append(outside, u)
		}
	}
	pull := func(u imageUse) error {
		fmt.Fprintf(log, "pulling %s from its registry (%s)\n", u.Ref, u)
		if err := d.Engine.PullAnonymously(ctx, u.Ref, log); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &BaseImageError{Use: u, OptIn: trust.LocalImagesName, Why: fmt.Sprintf("%s is not under the registry prefix, and its registry did not give it: %v", u.Ref, err)}
		}
		return nil
	}
	if len(prefixed) == 0 {
		for _, u := range outside {
			if u.What == "# syntax" {
				if err := pull(u); err != nil {
					return nil, err
				}
			}
		}
		return map[string]string{"image-resolve-mode": "pull"}, nil
	}
	if len(unknown) > 0 {
		return nil, &BaseImageError{Use: unknown[0], OptIn: trust.LocalImagesName, Why: "the image depends on a build argument, and the Dockerfile also reads images under the registry prefix, which only the engine holds"}
	}
	for _, u := range prefixed {
		img, err := d.Engine.Inspect(ctx, u.Ref)
		if err == nil && len(img.OnBuild) > 0 {
			return nil, &BaseImageError{Use: u, OptIn: trust.LocalImagesName, Why: fmt.Sprintf("%s has ONBUILD triggers (%s), which run with the engine's images in reach", u.Ref, strings.Join(img.OnBuild, "; "))}
		}
	}
	for _, u := range outside {
		if err := pull(u); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
