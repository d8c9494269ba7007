// Package buildkit builds Dockerfile contexts with BuildKit: the one inside the Docker Engine
// (reached over the engine's /grpc and /session endpoints, as buildx's docker driver does) or
// any buildkitd (BUILDKIT_HOST, as buildctl reads it).
package buildkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/tonistiigi/fsutil"

	// The connection helpers BUILDKIT_HOST may name: docker-container://, kube-pod://.
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer"
	_ "github.com/moby/buildkit/client/connhelper/kubepod"

	"github.com/runtimebuild/runtimebuild/internal/docker"
)

// ErrUnreachable says that no BuildKit answers where it was looked for.
var ErrUnreachable = errors.New("BuildKit does not answer")

// ErrNoHost is a Daemon without an address.
var ErrNoHost = errors.New("no buildkitd address")

// ErrHalfCertificate is a Daemon with a client certificate and no key, or a key and no certificate.
var ErrHalfCertificate = errors.New("a client certificate needs both its certificate and its key file")

// Engine connects to the BuildKit inside a Docker Engine: gRPC and the session each travel
// over a connection the engine upgrades (POST /grpc and /session, h2c).
func Engine(ctx context.Context, e *docker.Engine) (*client.Client, error) {
	return client.New(ctx, "",
		client.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return e.DialHijack(ctx, "/grpc", "h2c", nil)
		}),
		client.WithSessionDialer(func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			return e.DialHijack(ctx, "/session", proto, meta)
		}),
	)
}

// Daemon says where a buildkitd listens and how to trust it.
type Daemon struct {
	Host       string // BUILDKIT_HOST: unix://, tcp://, docker-container://, kube-pod://
	CACert     string // BUILDKIT_TLS_CA_CERT: file of the CA that signed the daemon's certificate
	Cert, Key  string // BUILDKIT_TLS_CERT, BUILDKIT_TLS_KEY: this client's certificate and key files
	ServerName string // the name the daemon's certificate carries; empty: the host of Host
}

// Connect returns a client of the daemon; it connects when first used.
func (d Daemon) Connect(ctx context.Context) (*client.Client, error) {
	if d.Host == "" {
		return nil, ErrNoHost
	}
	var opts []client.ClientOpt
	if d.CACert != "" {
		opts = append(opts, client.WithServerConfig(d.ServerName, d.CACert))
	}
	if d.Cert != "" || d.Key != "" {
		if d.Cert == "" || d.Key == "" {
			return nil, ErrHalfCertificate
		}
		opts = append(opts, client.WithCredentials(d.Cert, d.Key))
	}
	c, err := client.New(ctx, d.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("buildkitd %s: %w", d.Host, err)
	}
	return c, nil
}

// Ping asks c for its workers, within 20 s: an answer means builds can start.
func Ping(ctx context.Context, c *client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := c.ListWorkers(ctx); err != nil {
		return fmt.Errorf("%w: %s", ErrUnreachable, solveCause(err))
	}
	return nil
}

// Build is one Dockerfile build.
type Build struct {
	ContextDir string // the build context, with its Dockerfile at the root
	Target     string // the stage to build; empty: the last. Only the stages it needs run.
	Export     client.ExportEntry
	// CacheImports and CacheExports are registry caches to read and write (RegistryCache).
	CacheImports, CacheExports []client.CacheOptionsEntry
	// Platforms to build for ("linux/amd64", "linux/arm64"); several make an index. Empty: the daemon's own.
	Platforms []string
	// SourceDate, when set, is SOURCE_DATE_EPOCH: the build sees it as that build argument, and
	// the image exporter rewrites every timestamp after it in the layers to it, so that one
	// context gives one image digest wherever it is built (buildkitd v0.13 and later; the Docker
	// Engine 20.10's BuildKit knows neither).
	SourceDate time.Time
	// FrontendAttrs are further options of the Dockerfile frontend (image-resolve-mode).
	FrontendAttrs map[string]string
	// CredentialsFor, when set, is the one registry host this machine's credentials are handed
	// for; every other registry is reached anonymously.
	CredentialsFor string
}

// MobyExport names the image in the Docker Engine's own store (the engine's BuildKit only).
func MobyExport(names []string) client.ExportEntry {
	return client.ExportEntry{Type: "moby", Attrs: map[string]string{"name": strings.Join(names, ",")}}
}

// PushExport pushes the image under every name. The daemon reaches registries over TLS, and
// over plain HTTP only those on its loopback (localhost, 127.0.0.0/8, ::1) or that its own
// configuration marks so: no registry.insecure here, which would make it try plain HTTP anywhere.
func PushExport(names []string) client.ExportEntry {
	return client.ExportEntry{Type: client.ExporterImage, Attrs: map[string]string{"name": strings.Join(names, ","), "push": "true"}}
}

// Solve runs b on c with the dockerfile.v0 frontend, writing plain progress to log, and reports
// what it pushed and how long its phases took. A failed build is a *BuildError; a cancelled one
// returns ctx's error.
func Solve(ctx context.Context, c *client.Client, b Build, log io.Writer) (Report, error) {
	rep, _, err := solve(ctx, c, b, log)
	return rep, err
}

// solve is Solve that also says whether a step of the Dockerfile started.
func solve(ctx context.Context, c *client.Client, b Build, log io.Writer) (Report, bool, error) {
	opt, err := solveOpt(b)
	if err != nil {
		return Report{}, false, err
	}
	var digest string
	rep, started, err := follow(ctx, log, func(statuses chan *client.SolveStatus) error {
		resp, err := c.Solve(ctx, nil, opt, statuses)
		if err == nil {
			digest = resp.ExporterResponse["containerimage.digest"]
		}
		return err
	})
	rep.Digest = digest
	return rep, started, err
}

// Follow prints and reports, as Solve does, a solve that run starts elsewhere (the Docker
// Engine's /build): run sends the solve's statuses to the channel it is given and closes it
// before it returns.
func Follow(ctx context.Context, log io.Writer, run func(statuses chan *client.SolveStatus) error) (Report, error) {
	rep, _, err := follow(ctx, log, run)
	return rep, err
}

func follow(ctx context.Context, log io.Writer, run func(statuses chan *client.SolveStatus) error) (Report, bool, error) {
	statuses := make(chan *client.SolveStatus)
	tr := newTracker()
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		showProgress(statuses, log, tr)
	}()
	start := time.Now()
	err := run(statuses)
	<-printed
	rep := tr.report(time.Since(start))
	switch {
	case err == nil:
		return rep, true, nil
	case ctx.Err() != nil:
		return rep, tr.startedAStep(), ctx.Err()
	}
	return rep, tr.startedAStep(), tr.failure(err)
}

// EngineSession runs a BuildKit session on the engine's /session endpoint that hands the
// engine's BuildKit this machine's registry credentials for credentialsFor alone (every other
// registry anonymously), as Solve's session does; a /build request names it by the ID returned.
// stop ends it.
func EngineSession(ctx context.Context, e *docker.Engine, credentialsFor string) (id string, stop func(), err error) {
	s, err := session.NewSession(ctx, "runtimebuild-serve")
	if err != nil {
		return "", nil, fmt.Errorf("starting a BuildKit session: %w", err)
	}
	s.Allow(registryAuth(credentialsFor))
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			return e.DialHijack(ctx, "/session", proto, meta)
		})
	}()
	return s.ID(), func() { s.Close(); cancel(); <-done }, nil
}

func solveOpt(b Build) (client.SolveOpt, error) {
	fs, err := fsutil.NewFS(b.ContextDir)
	if err != nil {
		return client.SolveOpt{}, fmt.Errorf("opening the build context: %w", err)
	}
	attrs := maps.Clone(b.FrontendAttrs)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs["filename"] = "Dockerfile"
	if b.Target != "" {
		attrs["target"] = b.Target
	}
	if len(b.Platforms) > 0 {
		attrs["platform"] = strings.Join(b.Platforms, ",")
	}
	export := client.ExportEntry{Type: b.Export.Type, Attrs: maps.Clone(b.Export.Attrs), Output: b.Export.Output, OutputDir: b.Export.OutputDir}
	if !b.SourceDate.IsZero() {
		attrs["build-arg:SOURCE_DATE_EPOCH"] = strconv.FormatInt(b.SourceDate.Unix(), 10)
		if export.Attrs == nil {
			export.Attrs = map[string]string{}
		}
		export.Attrs["rewrite-timestamp"] = "true"
	}
	return client.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		LocalMounts:   map[string]fsutil.FS{"context": fs, "dockerfile": fs},
		Exports:       []client.ExportEntry{export},
		CacheImports:  b.CacheImports,
		CacheExports:  b.CacheExports,
		Session:       []session.Attachable{registryAuth(b.CredentialsFor)},
	}, nil
}

// registryAuth hands the builder this machine's registry credentials (~/.docker/config.json,
// DOCKER_CONFIG, credential helpers) when it pulls a base image or pushes the result: for the
// registry only when one is named, else for all.
func registryAuth(only string) session.Attachable {
	load := authprovider.LoadAuthConfig(config.LoadDefaultConfigFile(io.Discard))
	provider := load
	if only != "" {
		provider = func(ctx context.Context, host string, scope []string, check authprovider.ExpireCachedAuthCheck) (types.AuthConfig, error) {
			if registryKey(host) != registryKey(only) {
				return types.AuthConfig{}, nil // anonymous
			}
			return load(ctx, host, scope, check)
		}
	}
	return authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{AuthConfigProvider: provider})
}

// registryKey is a registry host as one name: Docker Hub's several hosts are one.
func registryKey(host string) string {
	switch host = strings.ToLower(host); host {
	case "docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/":
		return "docker.io"
	}
	return host
}

// IsLoopback reports whether a registry host ("127.0.0.1:5000", "localhost", "[::1]:5000") is
// on this machine, the only place images may travel over plain HTTP.
func IsLoopback(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
