// Package docker drives the Docker Engine through its API with the moby client: ping, inspect,
// pull, save, load, tag, remove and prune images, and the connections BuildKit's gRPC and session
// travel on. No docker CLI is needed.
package docker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/cli/cli/config"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
)

// ErrNoEngine says that no Docker engine answers.
var ErrNoEngine = errors.New("no Docker engine answers (is the daemon running? is its address right?)")

// ErrNoSuchImage says that the engine has no image of that name.
var ErrNoSuchImage = errors.New("no such image")

// EngineConfig says how to reach the engine (the edge reads it from DOCKER_HOST, DOCKER_TLS_VERIFY
// and DOCKER_CERT_PATH, as the docker CLI does).
type EngineConfig struct {
	Host      string // unix:///path, tcp://host:port, npipe://…; empty: the platform's default socket
	TLSVerify bool   // tcp:// with TLS, certificates from CertPath
	CertPath  string // ca.pem, cert.pem, key.pem; empty: ~/.docker
}

// Engine is a client of the Docker Engine's API; it negotiates the API version down to the
// engine's (1.41 for Engine 20.10).
type Engine struct {
	api  *client.Client
	host string
}

// HostError is an engine address or TLS setting the client cannot use.
type HostError struct {
	Host string
	Err  error
}

func (e *HostError) Error() string { return fmt.Sprintf("engine address %q: %v", e.Host, e.Err) }

// Unwrap returns the client's error.
func (e *HostError) Unwrap() error { return e.Err }

// NewEngine checks cfg and returns an engine client; it connects only when used.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	host := cfg.Host
	if host == "" {
		host = client.DefaultDockerHost
	}
	opts := []client.Opt{client.WithHost(host)} // the client negotiates the API version on its own
	if cfg.TLSVerify {
		dir := cfg.CertPath
		if dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, &HostError{Host: host, Err: fmt.Errorf("TLS: no certificate directory and no home directory: %w", err)}
			}
			dir = filepath.Join(home, ".docker")
		}
		opts = append(opts, client.WithTLSClientConfig(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")))
	}
	api, err := client.New(opts...)
	if err != nil {
		return nil, &HostError{Host: host, Err: err}
	}
	return &Engine{api: api, host: host}, nil
}

// Host is the engine's address, for messages.
func (e *Engine) Host() string { return e.host }

// Close releases the client's idle connections.
func (e *Engine) Close() error { return e.api.Close() }

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

// wrap turns the client's errors into this package's: ctx's own error when it ended, an
// *UnreachableError when nothing answered, ErrNoSuchImage for a missing image.
func (e *Engine) wrap(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case client.IsErrConnectionFailed(err):
		return &UnreachableError{Host: e.host, Err: err}
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%w: %v", ErrNoSuchImage, err)
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return &UnreachableError{Host: e.host, Err: err}
	}
	return err
}

// Ping checks that the engine answers, and settles the API version.
func (e *Engine) Ping(ctx context.Context) error {
	_, err := e.api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	return e.wrap(ctx, err)
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

// Image is what the engine tells of an image it has.
type Image struct {
	ID      string
	Created time.Time
	Size    int64    // bytes
	OnBuild []string // ONBUILD triggers a build FROM it runs
	Labels  map[string]string
}

// Inspect describes image (a name or an ID); ErrNoSuchImage when the engine does not have it.
func (e *Engine) Inspect(ctx context.Context, image string) (Image, error) {
	if _, err := ParseImage(image); err != nil && !strings.HasPrefix(image, "sha256:") {
		return Image{}, err
	}
	res, err := e.api.ImageInspect(ctx, image)
	if err != nil {
		return Image{}, e.wrap(ctx, err)
	}
	created, _ := time.Parse(time.RFC3339Nano, res.Created)
	img := Image{ID: res.ID, Created: created, Size: res.Size}
	if res.Config != nil {
		img.OnBuild, img.Labels = res.Config.OnBuild, res.Config.Labels
	}
	return img, nil
}

// Exists reports whether the engine has image.
func (e *Engine) Exists(ctx context.Context, image string) (bool, error) {
	_, err := e.Inspect(ctx, image)
	if errors.Is(err, ErrNoSuchImage) {
		return false, nil
	}
	return err == nil, err
}

// Pull pulls image with this machine's registry credentials for its registry (as the docker
// CLI finds them), the engine's progress lines going to log.
func (e *Engine) Pull(ctx context.Context, image string, log io.Writer) error {
	return e.pull(ctx, image, true, log)
}

// PullAnonymously pulls image as anyone may: with no credentials.
func (e *Engine) PullAnonymously(ctx context.Context, image string, log io.Writer) error {
	return e.pull(ctx, image, false, log)
}

func (e *Engine) pull(ctx context.Context, image string, withCredentials bool, log io.Writer) error {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return fmt.Errorf("%q is not an image reference: %w", image, err)
	}
	var auth string
	if withCredentials {
		auth = registryAuth(reference.Domain(named))
	}
	resp, err := e.api.ImagePull(ctx, named.String(), client.ImagePullOptions{RegistryAuth: auth})
	if err != nil {
		return fmt.Errorf("pulling %s: %w", image, e.wrap(ctx, err))
	}
	defer resp.Close()
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return fmt.Errorf("pulling %s: %w", image, e.wrap(ctx, err))
		}
		if msg.Error != nil {
			return fmt.Errorf("pulling %s: %s", image, msg.Error.Message)
		}
		if msg.Status != "" && msg.Progress == nil {
			fmt.Fprintf(log, "%s %s\n", msg.ID, msg.Status)
		}
	}
	return nil
}

// registryAuth encodes this machine's credentials for domain as the engine's X-Registry-Auth
// takes them; empty when there are none.
func registryAuth(domain string) string {
	if domain == "docker.io" {
		domain = "https://index.docker.io/v1/"
	}
	ac, err := config.LoadDefaultConfigFile(io.Discard).GetAuthConfig(domain)
	if err != nil || (ac.Username == "" && ac.IdentityToken == "" && ac.RegistryToken == "") {
		return ""
	}
	b, err := json.Marshal(registry.AuthConfig{
		Username: ac.Username, Password: ac.Password, ServerAddress: ac.ServerAddress,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
	})
	if err != nil {
		return ""
	}
	return base64.URLEncoding.EncodeToString(b) // the header's encoding (the engine's own decoder)
}

// Save streams the engine's `docker save` archive of image to w.
func (e *Engine) Save(ctx context.Context, image string, w io.Writer) error {
	if _, err := ParseImage(image); err != nil {
		return err
	}
	rc, err := e.api.ImageSave(ctx, []string{image})
	if err != nil {
		return fmt.Errorf("saving %s: %w", image, e.wrap(ctx, err))
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		return fmt.Errorf("saving %s: %w", image, e.wrap(ctx, err))
	}
	return nil
}

// Load loads a `docker save` archive (gzip or not); the engine's messages go to log. The
// engine applies the names the archive's manifest.json gives: callers that must choose the
// names write the archive themselves (see server's image loading).
func (e *Engine) Load(ctx context.Context, archive io.Reader, log io.Writer) error {
	resp, err := e.api.ImageLoad(ctx, archive, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("loading the image archive: %w", e.wrap(ctx, err))
	}
	defer resp.Close()
	return e.eachMessage(ctx, resp, "loading the image archive", func(msg jsonstream.Message) error {
		if msg.Error != nil {
			return fmt.Errorf("loading the image archive: %s", msg.Error.Message)
		}
		io.WriteString(log, msg.Stream)
		return nil
	})
}

// eachMessage hands fn each message of one of the engine's JSON message streams (/build,
// /images/load), in the engine's own type, until the stream ends or fn returns an error.
func (e *Engine) eachMessage(ctx context.Context, r io.Reader, what string, fn func(jsonstream.Message) error) error {
	dec := json.NewDecoder(r)
	for {
		var msg jsonstream.Message
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: %w", what, e.wrap(ctx, err))
		}
		if err := fn(msg); err != nil {
			return err
		}
	}
}

// Tag gives image (a name or an ID) the name ref.
func (e *Engine) Tag(ctx context.Context, image, ref string) error {
	if _, err := ParseImage(image); err != nil && !strings.HasPrefix(image, "sha256:") {
		return err
	}
	if _, err := ParseImage(ref); err != nil {
		return err
	}
	if _, err := e.api.ImageTag(ctx, client.ImageTagOptions{Source: image, Target: ref}); err != nil {
		return fmt.Errorf("tagging %s as %s: %w", image, ref, e.wrap(ctx, err))
	}
	return nil
}

// Remove removes the name or image ID from the engine (its layers go when no other name holds
// them); a missing one is not an error.
func (e *Engine) Remove(ctx context.Context, image string) error {
	_, err := e.api.ImageRemove(ctx, image, client.ImageRemoveOptions{})
	if err = e.wrap(ctx, err); err != nil && !errors.Is(err, ErrNoSuchImage) {
		return fmt.Errorf("removing %s: %w", image, err)
	}
	return nil
}

// RemoveUnnamed removes the image of that ID when it has no name left and no container uses
// it (the engine refuses otherwise, without force); it reports whether the image went.
func (e *Engine) RemoveUnnamed(ctx context.Context, id string) bool {
	img, err := e.api.ImageInspect(ctx, id)
	if err != nil || len(img.RepoTags) > 0 {
		return false
	}
	_, err = e.api.ImageRemove(ctx, id, client.ImageRemoveOptions{})
	return err == nil
}

// DialHijack upgrades a POST to path into a raw stream speaking proto (the engine's /grpc and
// /session endpoints speak h2c), sending meta as headers.
func (e *Engine) DialHijack(ctx context.Context, path, proto string, meta map[string][]string) (net.Conn, error) {
	conn, err := e.api.DialHijack(ctx, path, proto, meta)
	if err != nil {
		return nil, e.wrap(ctx, err)
	}
	return conn, nil
}

// API is the moby client itself, for what this package does not wrap (BuildKit's cache).
func (e *Engine) API() *client.Client { return e.api }
