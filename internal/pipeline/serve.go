package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/signal"
	"syscall"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/buildkit"
	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// drainLimit is how long a stopping serve keeps answering /build_status so that clients polling
// the builds it cancelled are told CANCELLED; within mage's 5 s grace after Ctrl-C.
const drainLimit = 3 * time.Second

// Serve runs the local Runtime API on SERVE_ADDR until ctx ends (Ctrl-C) or SIGTERM arrives,
// then drains: queued and running builds end CANCELLED, their files go, clients polling them
// are told, and the port is released. After SIGTERM it returns an error with exit code 143.
// ready, when not nil, receives the address once the server listens.
func Serve(ctx context.Context, cfg config.Config, log *progress.Log, ready func(addr string)) error {
	termCtx, stopTerm := signal.NotifyContext(ctx, syscall.SIGTERM) // mage's main catches only SIGINT
	defer stopTerm()
	builder, err := serveBuilder(termCtx, cfg, log)
	if err != nil {
		return err
	}
	err = serve(termCtx, cfg, log, builder, ready)
	if err == nil && ctx.Err() == nil && termCtx.Err() != nil {
		return &exitcode.Error{Code: 143, Err: errors.New("serve stopped by SIGTERM: its builds were cancelled and their files removed")}
	}
	return err
}

// serveBuilder is SERVE_BUILDER's builder; docker needs an engine that answers, buildkit a
// buildkitd at BUILDKIT_HOST.
func serveBuilder(ctx context.Context, cfg config.Config, log *progress.Log) (server.Builder, error) {
	switch cfg.ServeBuilder {
	case "check":
		log.Warnf("SERVE_BUILDER=check: uploads are unpacked and checked, and nothing is built")
		return server.CheckBuilder{Name: "SERVE_BUILDER=check"}, nil
	case "buildkit":
		d := buildkit.Daemon{Host: cfg.BuildkitHost, CACert: cfg.BuildkitTLSCACert, Cert: cfg.BuildkitTLSCert, Key: cfg.BuildkitTLSKey, ServerName: cfg.BuildkitTLSName}
		c, err := d.Connect(ctx)
		if err != nil {
			return nil, exitcode.AsUsage(err)
		}
		defer c.Close()
		if err := buildkit.Ping(ctx, c); err != nil {
			return nil, fmt.Errorf("serve builds on the buildkitd at BUILDKIT_HOST=%s: %w; start it, or correct BUILDKIT_HOST and the BUILDKIT_TLS_* files", cfg.BuildkitHost, err)
		}
		b := &server.BuildkitBuilder{Daemon: d}
		for _, host := range b.SharedNetworks(ctx) {
			log.Warnf("the buildkitd at BUILDKIT_HOST=%s runs build steps in this machine's network namespace: a RUN step reaches serve's loopback and private services; run it in a network namespace of its own (docs/serve-security.md)", host)
		}
		return b, nil
	}
	engine, err := newEngine(cfg)
	if err != nil {
		return nil, err
	}
	if err := engine.Ping(ctx); err != nil {
		return nil, fmt.Errorf("serve builds with the Docker engine's BuildKit: %w; start the engine or point DOCKER_HOST at it, build on a buildkitd with SERVE_BUILDER=buildkit and BUILDKIT_HOST, or set SERVE_BUILDER=check to check uploads without building", err)
	}
	return &server.DockerBuilder{Engine: engine, CacheMax: cfg.ServeCacheMax}, nil
}

func serve(ctx context.Context, cfg config.Config, log *progress.Log, builder server.Builder, ready func(addr string)) error {
	if cfg.ServeNoAuth {
		log.Warnf("SERVE_NO_AUTH=true: any request is accepted, with or without a key")
	} else if cfg.RuntimeAPIKey == "" {
		return exitcode.Usagef("serve needs RUNTIME_API_KEY (the key clients must send), or SERVE_NO_AUTH=true")
	}
	if cfg.ServeLocalImages {
		log.Warnf("SERVE_LOCAL_IMAGES=true: FROM, --from and mount sources may use any image the engine holds, other users' too (a single-user machine's setting)")
	}
	if cfg.ServeAllowPrivateURLs {
		log.Warnf("SERVE_ALLOW_PRIVATE_URLS=true: ADD and git sources may reach this machine's loopback, link-local and private addresses")
	}
	ln, err := net.Listen("tcp", cfg.ServeAddr)
	if err != nil {
		return exitcode.Usagef("SERVE_ADDR=%q: %v", cfg.ServeAddr, err)
	}
	defer ln.Close()
	if tcp, ok := ln.Addr().(*net.TCPAddr); cfg.ServeNoAuth && !cfg.ServeRemoteNoAuth && (!ok || !tcp.IP.IsLoopback()) {
		return exitcode.Usagef("SERVE_NO_AUTH=true on SERVE_ADDR=%s, which other machines reach, lets anyone build: set RUNTIME_API_KEY, listen on 127.0.0.1, or set SERVE_ALLOW_REMOTE_NO_AUTH=true as well", cfg.ServeAddr)
	}
	srv, err := server.New(server.Options{
		Key: cfg.RuntimeAPIKey, NoAuth: cfg.ServeNoAuth, RegistryPrefix: cfg.ServeRegistry, Workers: cfg.ServeWorkers,
		BuildTimeout: cfg.ServeBuildTimeout, MaxUpload: cfg.ServeMaxUpload, Builder: builder, Logger: log,
		LocalImages: cfg.ServeLocalImages, AllowPrivateURLs: cfg.ServeAllowPrivateURLs,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	hs := srv.HTTPServer() // header, idle and write timeouts
	done := make(chan error, 1)
	go func() { done <- hs.Serve(srv.Listener(ln)) }() // at most Limits.MaxConns connections
	log.Infof("Runtime API listening on http://%s (builder %s, registry prefix %s); Ctrl-C or SIGTERM stops it", ln.Addr(), cfg.ServeBuilder, cfg.ServeRegistry)
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
