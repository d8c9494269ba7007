package docker

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/distribution/reference"
)

// DefaultHost is where the engine listens when DOCKER_HOST is empty.
const DefaultHost = "unix:///var/run/docker.sock"

// ErrNoSuchImage says that the engine has no image of that name.
var ErrNoSuchImage = errors.New("no such image")

// EngineConfig says how to reach the engine, as the docker CLI reads it from the environment.
type EngineConfig struct {
	Host      string // DOCKER_HOST: unix:///path or tcp://host:port; empty: DefaultHost
	TLSVerify bool   // DOCKER_TLS_VERIFY: tcp:// with TLS, certificates from CertPath
	CertPath  string // DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem; empty: ~/.docker
}

// Engine talks to the Docker Engine's API directly (no docker CLI): ping, inspect, load, tag,
// and connections upgraded to BuildKit's gRPC and session streams.
type Engine struct {
	host    string
	network string
	addr    string
	tls     *tls.Config
	http    *http.Client
}

// NewEngine checks cfg and returns an engine client; it connects only when used.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	host := cfg.Host
	if host == "" {
		host = DefaultHost
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("DOCKER_HOST %q: %w", host, err)
	}
	e := &Engine{host: host}
	switch u.Scheme {
	case "unix":
		e.network, e.addr = "unix", u.Path
	case "tcp":
		e.network, e.addr = "tcp", u.Host
		if cfg.TLSVerify {
			if e.tls, err = engineTLS(cfg.CertPath, u.Hostname()); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("DOCKER_HOST %q: only unix:// and tcp:// engines are supported", host)
	}
	if e.addr == "" {
		return nil, fmt.Errorf("DOCKER_HOST %q names no socket or address", host)
	}
	e.http = &http.Client{Transport: &http.Transport{
		DialContext:     func(ctx context.Context, _, _ string) (net.Conn, error) { return e.dial(ctx) },
		IdleConnTimeout: 30 * time.Second,
	}}
	return e, nil
}

func engineTLS(dir, serverName string) (*tls.Config, error) {
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("DOCKER_CERT_PATH is empty and there is no home directory: %w", err)
		}
		dir = filepath.Join(home, ".docker")
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("DOCKER_TLS_VERIFY: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("DOCKER_TLS_VERIFY: %s holds no certificate", filepath.Join(dir, "ca.pem"))
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("DOCKER_TLS_VERIFY: %w", err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: serverName, MinVersion: tls.VersionTLS12}, nil
}

// Host is the engine's address, for messages.
func (e *Engine) Host() string { return e.host }

func (e *Engine) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, e.network, e.addr)
	if err != nil {
		return nil, err
	}
	if e.tls == nil {
		return conn, nil
	}
	tc := tls.Client(conn, e.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// apiError is the engine's JSON error body.
type apiError struct {
	Message string `json:"message"`
}

func (e *Engine) do(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Response, error) {
	u := "http://docker" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-tar")
	}
	resp, err := e.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, &UnreachableError{Host: e.host, Err: err}
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var ae apiError
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &ae) != nil || ae.Message == "" {
			ae.Message = strings.TrimSpace(string(b))
		}
		if resp.StatusCode == http.StatusNotFound && strings.HasPrefix(path, "/images/") {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchImage, ae.Message)
		}
		return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, ae.Message)
	}
	return resp, nil
}

// UnreachableError says that no engine answers at Host; it is ErrNoEngine.
type UnreachableError struct {
	Host string
	Err  error // what the connection met
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("no Docker engine answers at %s (%v)", e.Host, e.Err)
}

// Is makes errors.Is(err, ErrNoEngine) true.
func (e *UnreachableError) Is(target error) bool { return target == ErrNoEngine }

// Unwrap returns what the connection met.
func (e *UnreachableError) Unwrap() error { return e.Err }

// Ping checks that the engine answers.
func (e *Engine) Ping(ctx context.Context) error {
	resp, err := e.do(ctx, http.MethodGet, "/_ping", nil, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// ParseImage checks that ref is an image reference as the engine reads it ("app",
// "registry:5000/team/app:tag", "app@sha256:..."): nothing else reaches the API's path.
func ParseImage(ref string) (string, error) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("%q is not an image reference: %w", ref, err)
	}
	return n.String(), nil
}

// Inspect describes image; ErrNoSuchImage when the engine does not have it.
func (e *Engine) Inspect(ctx context.Context, image string) (Image, error) {
	ref, err := ParseImage(image)
	if err != nil {
		return Image{}, err
	}
	resp, err := e.do(ctx, http.MethodGet, "/images/"+ref+"/json", nil, nil)
	if err != nil {
		return Image{}, err
	}
	defer resp.Body.Close()
	var out struct {
		ID      string `json:"Id"`
		Created time.Time
		Size    int64
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return Image{}, fmt.Errorf("inspecting %s: %w", image, err)
	}
	return Image{ID: out.ID, Created: out.Created, Size: out.Size}, nil
}

var loadedImage = regexp.MustCompile(`(?m)^Loaded image(?: ID)?: (\S+)`)

// Load loads a `docker save` archive (gzip or not) and returns the images it named; the
// engine's messages go to log.
func (e *Engine) Load(ctx context.Context, archive io.Reader, log io.Writer) ([]string, error) {
	resp, err := e.do(ctx, http.MethodPost, "/images/load", url.Values{"quiet": {"1"}}, archive)
	if err != nil {
		return nil, fmt.Errorf("loading the image archive: %w", err)
	}
	defer resp.Body.Close()
	var images []string
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Stream      string `json:"stream"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("loading the image archive: %w", err)
		}
		if msg.ErrorDetail != nil {
			return nil, fmt.Errorf("loading the image archive: %s", msg.ErrorDetail.Message)
		}
		io.WriteString(log, msg.Stream)
		for _, m := range loadedImage.FindAllStringSubmatch(msg.Stream, -1) {
			images = append(images, m[1])
		}
	}
	if len(images) == 0 {
		return nil, errors.New("loading the image archive: the engine named no image")
	}
	return images, nil
}

// Tag gives image (a name or an ID) the name ref.
func (e *Engine) Tag(ctx context.Context, image, ref string) error {
	if _, err := ParseImage(image); err != nil && !strings.HasPrefix(image, "sha256:") {
		return err
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("%q is not an image reference: %w", ref, err)
	}
	q := url.Values{"repo": {named.Name()}}
	if t, ok := named.(reference.Tagged); ok {
		q.Set("tag", t.Tag())
	}
	resp, err := e.do(ctx, http.MethodPost, "/images/"+image+"/tag", q, nil)
	if err != nil {
		return fmt.Errorf("tagging %s as %s: %w", image, ref, err)
	}
	resp.Body.Close()
	return nil
}

// DialHijack upgrades a POST to path into a raw stream speaking proto (the engine's /grpc and
// /session endpoints speak h2c), sending meta as headers, as the docker CLI's client does.
func (e *Engine) DialHijack(ctx context.Context, path, proto string, meta map[string][]string) (net.Conn, error) {
	conn, err := e.dial(ctx)
	if err != nil {
		return nil, &UnreachableError{Host: e.host, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://docker"+path, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	for k, v := range meta {
		req.Header[k] = v
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", proto)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("upgrading %s: %w", path, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("upgrading %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		conn.Close()
		return nil, fmt.Errorf("upgrading %s: the engine answered %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	if !stop() { // the context ended while upgrading: the deadline poisoned the connection
		conn.Close()
		return nil, ctx.Err()
	}
	return &hijacked{Conn: conn, r: br}, nil
}

// hijacked is an upgraded connection whose first bytes may already sit in the reader that
// parsed the upgrade answer.
type hijacked struct {
	net.Conn
	r *bufio.Reader
}

func (h *hijacked) Read(p []byte) (int, error) { return h.r.Read(p) }

// CloseWrite half-closes when the transport can, as gRPC's h2c framing expects of a stream.
func (h *hijacked) CloseWrite() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
