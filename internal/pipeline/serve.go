package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/docker"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// Serve runs the local Runtime API on SERVE_ADDR until ctx ends, then drains: queued and
// running builds end CANCELLED and the port is released. ready, when not nil, receives the
// address once the server listens.
func Serve(ctx context.Context, cfg config.Config, log *progress.Log, ready func(addr string)) error {
	builder, err := serveBuilder(ctx, cfg, log)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log, builder, ready)
}

// serveBuilder is SERVE_BUILDER's builder; docker needs an engine that answers.
func serveBuilder(ctx context.Context, cfg config.Config, log *progress.Log) (server.Builder, error) {
	switch cfg.ServeBuilder {
	case "check":
		log.Warnf("SERVE_BUILDER=check: uploads are unpacked and checked, and nothing is built")
		return server.CheckBuilder{}, nil
	}
	if err := docker.Ping(ctx); err != nil {
		return nil, fmt.Errorf("serve builds with the local Docker engine: %w; start it, or set SERVE_BUILDER=check to check uploads without building", err)
	}
	return server.DockerBuilder{}, nil
}

func serve(ctx context.Context, cfg config.Config, log *progress.Log, builder server.Builder, ready func(addr string)) error {
	if cfg.ServeNoAuth {
		log.Warnf("SERVE_NO_AUTH=true: any request is accepted, with or without a key")
	} else if cfg.RuntimeAPIKey == "" {
		return exitcode.Usagef("serve needs RUNTIME_API_KEY (the key clients must send), or SERVE_NO_AUTH=true")
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
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	hs := srv.HTTPServer() // header, idle and write timeouts
	done := make(chan error, 1)
	go func() { done <- hs.Serve(srv.Listener(ln)) }() // at most Limits.MaxConns connections
	log.Infof("Runtime API listening on http://%s (builder %s, registry prefix %s); Ctrl-C stops it", ln.Addr(), cfg.ServeBuilder, cfg.ServeRegistry)
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// Builds first: they end CANCELLED (and their files go) while the port still answers, so
	// that a client polling now is told; then the requests under way get a second to finish.
	log.Infof("stopping: accepted builds are cancelled")
	srv.Close()
	shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	hs.Close() // what outlived the second; the listener is closed either way
	return nil
}
