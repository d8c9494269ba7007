package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/buildkit/worker/label"
	"github.com/runtimebuild/runtimebuild/internal/buildkit"
	"github.com/runtimebuild/runtimebuild/internal/targz"
)

// BuildkitBuilder builds on a buildkitd (BUILDKIT_HOST), or on one of several chosen by the
// target repository, and pushes the image to the target image's registry under every name;
// /image_exists then asks that registry. Plain HTTP is used only for registries on this
// machine's loopback. Builds are reproducible: SOURCE_DATE_EPOCH is the archive's own time.
type BuildkitBuilder struct {
	Daemon buildkit.Daemon // the daemon, when Farm is nil
	Farm   *buildkit.Farm  // several daemons
	// Cache is how much goes to the registry cache beside the target repository
	// (buildkit.RegistryCache); empty: none.
	Cache     buildkit.CacheMode
	Platforms []string // empty: the daemon's own
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
	farm := b.Farm
	if farm == nil {
		farm = &buildkit.Farm{Daemons: []buildkit.Daemon{b.Daemon}}
	}
	repo := refs[0].Context().Name()
	branch, _ := buildkit.Branch(job.Tags)
	sourceDate, err := archiveTime(ctx, job)
	if err != nil {
		return "", err
	}
	build := buildkit.Build{Export: buildkit.PushExport(names), Platforms: b.Platforms, SourceDate: sourceDate}
	return job.TargetImage, solveJob(ctx, job, build, log, func(ctx context.Context, build buildkit.Build, _ sources, log io.Writer) (buildkit.Report, error) {
		if b.Cache != "" {
			build.CacheImports, build.CacheExports = buildkit.RegistryCache(repo, build.Target, branch, b.Cache)
		}
		rep, err := farm.Solve(ctx, repo, build, log)
		job.Digest = rep.Digest // the pushed manifest's (the engine's exporter gives an image ID, no such digest)
		return rep, err
	})
}

// archiveTime is the time the archive gives its Dockerfile: the client packs every member with
// the commit's time, which makes it the build's SOURCE_DATE_EPOCH. Zero when it gives none.
func archiveTime(ctx context.Context, job *Job) (time.Time, error) {
	var t time.Time
	_, err := walk(ctx, job.Archive, job.MaxUnpacked, maxMembers, func(m targz.Member, _ io.Reader) error {
		if m.Name != "Dockerfile" {
			return nil
		}
		if m.Header.ModTime.Unix() > 0 {
			t = m.Header.ModTime.UTC()
		}
		return errFound
	})
	if err != nil && !errors.Is(err, errFound) {
		return time.Time{}, fmt.Errorf("reading the archive's time: %w", err)
	}
	return t, nil
}

// errFound stops a walk that found what it looked for.
var errFound = errors.New("found")

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
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	if loc, lerr := resp.Location(); lerr == nil && isRedirect(resp.StatusCode) {
		if from, to := v2Repository(r.URL.Path), v2Repository(loc.Path); from != "" && to != "" && from != to {
			resp.Body.Close()
			return nil, fmt.Errorf("refusing the registry's redirect from repository %s to %s: serve asks and pushes only the repository it named", from, to)
		}
	}
	return resp, nil
}

func isRedirect(code int) bool { return code >= 300 && code < 400 && code != http.StatusNotModified }

// v2Repository is the repository a registry API path names (/v2/<repository>/manifests/…,
// blobs/… or tags/…), "" for any other path (a blob's storage, say).
func v2Repository(p string) string {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return ""
	}
	for _, kind := range []string{"/manifests/", "/blobs/", "/tags/"} {
		if i := strings.LastIndex(rest, kind); i > 0 {
			return rest[:i]
		}
	}
	return ""
}

// pushArchive pushes a `docker save` archive's image under every name.
func pushArchive(ctx context.Context, job *Job, refs []name.Reference, log io.Writer) error {
	img, err := archiveImage(job)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		fmt.Fprintf(log, "pushing %s\n", ref)
		if err := remote.Write(ref, img, registryOptions(ctx)...); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
	}
	return nil
}

// SharedNetworks names the daemons whose build steps run in this machine's network namespace
// (a buildkitd here, its worker on the host's network: no CNI, no namespace of its own), where a
// RUN step reaches serve's loopback and private services. A daemon that does not answer is not
// named: it is told apart when builds go to it.
func (b *BuildkitBuilder) SharedNetworks(ctx context.Context) []string {
	daemons := []buildkit.Daemon{b.Daemon}
	if b.Farm != nil {
		daemons = b.Farm.Daemons
	}
	here, _ := os.Hostname()
	var shared []string
	for _, d := range daemons {
		c, err := d.Connect(ctx)
		if err != nil {
			continue
		}
		asked, cancel := context.WithTimeout(ctx, 5*time.Second)
		workers, err := c.ListWorkers(asked)
		cancel()
		c.Close()
		if err != nil {
			continue
		}
		for _, w := range workers {
			if w.Labels[label.Network] == "host" && w.Labels[label.Hostname] == here {
				shared = append(shared, d.Host)
				break
			}
		}
	}
	return shared
}
