package docker

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// upgrader answers one upgrade request on a unix socket with 101 and, in the same write, the
// first bytes of the upgraded stream, as an engine that starts talking at once does.
func upgrader(t *testing.T, first string) (*Engine, <-chan *http.Request) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "engine.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan *http.Request, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			return
		}
		got <- req
		io.WriteString(conn, "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"+first)
		io.WriteString(conn, "and later bytes")
	}()
	e, err := NewEngine(EngineConfig{Host: "unix://" + sock})
	if err != nil {
		t.Fatal(err)
	}
	return e, got
}

func TestDialHijackKeepsTheBytesThatCameWithTheUpgrade(t *testing.T) {
	e, got := upgrader(t, "early bytes;")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := e.DialHijack(ctx, "/session", "h2c", map[string][]string{"X-Docker-Expose-Session-Uuid": {"abc"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := <-got
	if req.Method != http.MethodPost || req.URL.Path != "/session" || req.Header.Get("Upgrade") != "h2c" || req.Header.Get("X-Docker-Expose-Session-Uuid") != "abc" {
		t.Fatalf("upgrade request %s %s %v", req.Method, req.URL.Path, req.Header)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(conn)
	if string(b) != "early bytes;and later bytes" {
		t.Fatalf("read %q after the upgrade, want the early bytes first", b)
	}
}

func TestImageNamesThatAreNoReferencesAreRefused(t *testing.T) {
	for _, ref := range []string{"--help", "-f", "../../containers/json", "a b", ""} {
		if _, err := ParseImage(ref); err == nil {
			t.Errorf("%q accepted as an image reference", ref)
		}
	}
	for _, ref := range []string{"app", "localhost/runtime/app:1-python", "127.0.0.1:5000/a/b:c"} {
		if _, err := ParseImage(ref); err != nil {
			t.Errorf("%q refused: %v", ref, err)
		}
	}
}

func TestAnEngineThatDoesNotListenSaysSo(t *testing.T) {
	e, err := NewEngine(EngineConfig{Host: "unix://" + filepath.Join(t.TempDir(), "none.sock")})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "no Docker engine answers at unix:") {
		t.Fatalf("ping of nothing: %v", err)
	}
	var he *HostError
	if _, err := NewEngine(EngineConfig{Host: "no-scheme"}); !errors.As(err, &he) {
		t.Fatalf("an address with no scheme: %v, want a *HostError", err)
	}
}
