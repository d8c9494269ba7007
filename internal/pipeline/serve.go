package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/buildkit"
	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/records"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// drainLimit is how long a stopping serve keeps answering /build_status so that clients polling
// the builds it cancelled are told CANCELLED; within mage's 5 s grace after Ctrl-C.
const drainLimit = 3 * time.Second

// Serve runs the local Runtime API on SERVE_ADDR until ctx ends (the targets cancel it at
// Ctrl-C or SIGTERM), then drains: queued and running builds end CANCELLED, their files go,
// clients polling them are told, and the port is released; it returns ctx's error then (an
// *InterruptedError, which the targets end with 130 or 143). ready, when not nil, receives the
// address once the server listens.
func Serve(ctx context.Context, cfg config.Serve, log *progress.Log, ready func(addr string)) error {
	builder, err := serveBuilder(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := serve(ctx, cfg, log, builder, ready); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return &InterruptedError{Advice: "serve stopped: its builds were cancelled and their files removed"}
	}
	return nil
}

// serveBuilder is SERVE_BUILDER's builder; docker needs an engine that answers, buildkit a
// buildkitd at BUILDKIT_HOST.
func serveBuilder(ctx context.Context, cfg config.Serve, log *progress.Log) (server.Builder, error) {
	switch cfg.Builder {
	case "check":
		log.Warnf("SERVE_BUILDER=check: uploads are unpacked and checked, and nothing is built")
		return server.CheckBuilder{Name: "SERVE_BUILDER=check"}, nil
	case "buildkit":
		return buildkitFarm(ctx, cfg, log)
	}
	engine, err := newEngine(cfg.Engine)
	if err != nil {
		return nil, err
	}
	if err := engine.Ping(ctx); err != nil {
		return nil, fmt.Errorf("serve builds with the Docker engine's BuildKit: %w; start the engine or point DOCKER_HOST at it, build on a buildkitd with SERVE_BUILDER=buildkit and BUILDKIT_HOST, or set SERVE_BUILDER=check to check uploads without building", err)
	}
	return &server.DockerBuilder{Engine: engine, CacheMax: cfg.CacheMax, CacheMaxName: "SERVE_CACHE_MAX"}, nil
}

// buildkitFarm is the buildkit builder on BUILDKIT_HOST's daemons: at least one must answer
// now; those that do not are named, and skipped by each build while they stay silent.
func buildkitFarm(ctx context.Context, cfg config.Serve, log *progress.Log) (server.Builder, error) {
	farm := &buildkit.Farm{Warnf: log.Warnf}
	answering := 0
	for _, host := range buildkit.Hosts(cfg.BuildkitHost) {
		d := buildkit.Daemon{Host: host, CACert: cfg.BuildkitTLSCACert, Cert: cfg.BuildkitTLSCert, Key: cfg.BuildkitTLSKey, ServerName: cfg.BuildkitTLSName}
		c, err := d.Connect(ctx)
		if err != nil {
			return nil, exitcode.Usagef("BUILDKIT_HOST=%s: %v", cfg.BuildkitHost, err)
		}
		err = buildkit.Ping(ctx, c)
		c.Close()
		if err != nil {
			log.Warnf("the buildkitd at %s (BUILDKIT_HOST) does not answer: %v; builds skip it while it stays silent", host, err)
		} else {
			answering++
		}
		farm.Daemons = append(farm.Daemons, d)
	}
	if answering == 0 {
		return nil, fmt.Errorf("serve builds on the buildkitd at BUILDKIT_HOST=%s: %w; start it, or correct BUILDKIT_HOST and the BUILDKIT_TLS_* files", cfg.BuildkitHost, buildkit.ErrUnreachable)
	}
	log.Infof("building on %d buildkitd(s) (%d answer), registry cache %s, platforms %s", len(farm.Daemons), answering, cfg.CacheMode, platformsText(cfg.Platforms))
	b := &server.BuildkitBuilder{Farm: farm, Cache: buildkit.CacheMode(cfg.CacheMode), Platforms: cfg.Platforms} // config took only max, min or off
	for _, host := range b.SharedNetworks(ctx) {
		log.Warnf("the buildkitd at %s (BUILDKIT_HOST) runs build steps in this machine's network namespace: a RUN step reaches serve's loopback and private services; run it in a network namespace of its own (docs/serve-security.md)", host)
	}
	return b, nil
}

func platformsText(p []string) string {
	if len(p) == 0 {
		return "the daemon's own"
	}
	return strings.Join(p, ",")
}

// openStore opens SERVE_STATE_DIR's build records (default records.DefaultDir); another serve
// using it is a usage error.
func openStore(cfg config.Serve, log *progress.Log) (*records.Store, error) {
	dir := cfg.StateDir
	if dir == "" {
		d, err := records.DefaultDir(cfg.StateHome)
		if err != nil {
			return nil, exitcode.Usagef("SERVE_STATE_DIR is not set, and %v", err)
		}
		dir = d
	}
	st, err := records.Open(dir, records.Options{})
	var locked *records.LockedError
	if errors.As(err, &locked) {
		return nil, exitcode.Usagef("SERVE_STATE_DIR=%s: %v", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("SERVE_STATE_DIR=%s: %w", dir, err)
	}
	log.Infof("build records in %s (kept: the latest %d ended builds, none older than %s)", dir, records.DefaultMaxRecords, records.DefaultMaxAge)
	return st, nil
}

func serve(ctx context.Context, cfg config.Serve, log *progress.Log, builder server.Builder, ready func(addr string)) error {
	if cfg.NoAuth {
		log.Warnf("SERVE_NO_AUTH=true: any request is accepted, with or without a key")
	} else if cfg.Key == "" {
		return exitcode.Usagef("serve needs RUNTIME_API_KEY (the key clients must send), or SERVE_NO_AUTH=true")
	}
	if cfg.LocalImages {
		log.Warnf("SERVE_LOCAL_IMAGES=true: FROM, --from and mount sources may use any image the engine holds, other users' too (a single-user machine's setting)")
	}
	if cfg.AllowPrivateURLs {
		log.Warnf("SERVE_ALLOW_PRIVATE_URLS=true: ADD and git sources may reach this machine's loopback, link-local and private addresses")
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return exitcode.Usagef("SERVE_ADDR=%q: %v", cfg.Addr, err)
	}
	defer ln.Close()
	if tcp, ok := ln.Addr().(*net.TCPAddr); cfg.NoAuth && !cfg.RemoteNoAuth && (!ok || !tcp.IP.IsLoopback()) {
		return exitcode.Usagef("SERVE_NO_AUTH=true on SERVE_ADDR=%s, which other machines reach, lets anyone build: set RUNTIME_API_KEY, listen on 127.0.0.1, or set SERVE_ALLOW_REMOTE_NO_AUTH=true as well", cfg.Addr)
	}
	store, err := openStore(cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	srv, err := server.New(server.Options{
		Key: cfg.Key, NoAuth: cfg.NoAuth, RegistryPrefix: cfg.Registry, Workers: cfg.Workers,
		BuildTimeout: cfg.BuildTimeout, MaxUpload: cfg.MaxUpload, Builder: builder, Logger: log, Store: store,
		LocalImages: cfg.LocalImages, AllowPrivateURLs: cfg.AllowPrivateURLs,
		LocalImagesName: "SERVE_LOCAL_IMAGES=true", PrivateURLsName: "SERVE_ALLOW_PRIVATE_URLS=true",
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	hs := srv.HTTPServer() // header, idle and write timeouts
	done := make(chan error, 1)
	go func() { done <- hs.Serve(srv.Listener(ln)) }() // at most Limits.MaxConns connections
	log.Infof("Runtime API listening on http://%s (builder %s, registry prefix %s); Ctrl-C or SIGTERM stops it", ln.Addr(), cfg.Builder, cfg.Registry)
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// Builds first: they end CANCELLED (and their files go) while the port still answers; a
	// client polling is told (for up to drainLimit); then the requests under way get a second.
	log.Infof("stopping: accepted builds are cancelled")
	srv.Close()
	drain, stopDrain := context.WithTimeout(context.Background(), drainLimit)
	if !srv.AwaitReported(drain) {
		log.Infof("stopped without telling every client: a cancelled build's status was not polled within %s", drainLimit)
	}
	stopDrain()
	shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	hs.Close() // what outlived the second; the listener is closed either way
	return nil
}
