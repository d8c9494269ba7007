// Package server is a local Runtime API: the protocol of docs/protocol.md over HTTP, with builds
// run by a Builder: BuildKit (the Docker engine's own, or a buildkitd) or a check that builds nothing.
//
// By concern: server.go (options, start and stop), http.go (the handlers), upload.go (reading
// POST /build), archive.go (the uploaded archive), queue.go (workers running builds),
// records.go and stored.go (what is kept of each build, and for how long), workdir.go (the
// private build directory), conns.go (connection limits), trust.go, sources.go and
// cachemounts.go (the trust boundary of docs/serve-security.md), builders.go,
// docker_builder.go, buildkit_builder.go, image_archive.go.
package server

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// Builder builds what an upload holds.
type Builder interface {
	// Build builds job, writing its output to log, and returns the image it made.
	Build(ctx context.Context, job *Job, log io.Writer) (image string, err error)
	// ImageExists reports whether the image is known to the builder.
	ImageExists(ctx context.Context, image string) (bool, error)
}

// ImageInfo is what /image_exists tells of an image that exists.
type ImageInfo = runtimeapi.ImageInfo

// ImageDescriber is a Builder that can also describe the images it has; /image_exists then
// answers with their upload time and size, as the hosted service does.
type ImageDescriber interface {
	DescribeImage(ctx context.Context, image string) (ImageInfo, error)
}

// Job is one accepted upload.
type Job struct {
	ID          string
	Kind        Kind
	Archive     string // the uploaded tar.gz
	Dir         string // the build directory, removed when the build ends
	TargetImage string
	Tags        []string // full image references
	Target      string   // build stage, when the client named one
	MaxUnpacked int64    // limit for unpacking the archive
	Trust       Trust    // what the build may reach (the server's options)

	// Set by the builder: the image's digest and how the build spent its time, when it knows.
	Digest    string
	Telemetry *runtimeapi.Telemetry
}

// Unpack extracts the job's archive into Dir/context and returns that directory.
func (j *Job) Unpack(ctx context.Context) (string, error) {
	dir := filepath.Join(j.Dir, "context")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	return dir, unpack(ctx, j.Archive, dir, j.MaxUnpacked)
}

// Logger receives the server's human lines; *progress.Log is one.
type Logger = progress.Logger

// Options configure a Server.
type Options struct {
	Key            string // required in X-API-Key unless NoAuth
	NoAuth         bool
	RegistryPrefix string // target images, tags and /image_exists only under it (Trust)
	// LocalImages (SERVE_LOCAL_IMAGES) and AllowPrivateURLs (SERVE_ALLOW_PRIVATE_URLS) are the
	// operator's opt-ins beyond the trust boundary (Trust).
	LocalImages, AllowPrivateURLs bool
	// LocalImagesName and PrivateURLsName name them in refusals (Trust's fields of those names).
	LocalImagesName, PrivateURLsName string
	Workers                          int           // builds at once; default 1
	QueueSize                        int           // accepted builds waiting for a worker; default 8
	BuildTimeout                     time.Duration // a build past it ends as TIMEOUT; default 30 min
	MaxUpload                        int64         // bytes of an archive, compressed and unpacked; default 4 GiB
	// WorkDir holds this server's private directory; default os.TempDir()/runtimebuild-serve-<uid>.
	// It must be this user's alone (not a link, mode 0700): else a new private directory
	// beside it is used, and nothing is cleaned up in it.
	WorkDir string
	Limits  Limits // what clients can hold: connections, time, uploads at once
	Builder Builder
	Logger  Logger

	// A finished build's logs are dropped after LogRetention (default 1 h), and the build is
	// forgotten after StatusRetention (default 24 h): /build_status answers until then.
	LogRetention    time.Duration
	StatusRetention time.Duration
	Now             func() time.Time // the clock of retention; default time.Now

	// Store, when set, keeps every build's record (status, image, error, times, log tail) across
	// restarts: a build memory has forgotten is answered from it, and builds an earlier server
	// left unended are ended INTERNAL_ERROR when this one starts. Its own bounds apply.
	Store Store
}

// Server is the local Runtime API. Start it, serve Handler, then Close.
type Server struct {
	opts   Options
	ctx    context.Context // ends on Close: queued and running builds are cancelled
	cancel context.CancelFunc
	queue  chan *build
	wg     sync.WaitGroup

	hold     io.Closer // the lock on WorkDir: orphan cleanup of later servers skips it
	holdOnce sync.Once
	conns    *connTracker
	uploads  chan struct{} // one token per upload being received

	records *records

	statusRead chan struct{} // a client read a terminal status (AwaitReported waits on it)
}

// maxErrorText bounds a build's error text; the failing step and its last lines fit well within.
const maxErrorText = 8 << 10

// ErrNoKey is Options with neither a Key nor NoAuth: the server would accept no request.
var ErrNoKey = errors.New("server: no API key, and NoAuth is not set")

// New checks the options and prepares the work directory, removing what an earlier run left.
func New(opts Options) (*Server, error) {
	if opts.Builder == nil {
		return nil, errors.New("server: no builder")
	}
	if opts.Key == "" && !opts.NoAuth {
		return nil, ErrNoKey
	}
	if opts.Workers <= 0 {
		opts.Workers = 1
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 8
	}
	if opts.BuildTimeout <= 0 {
		opts.BuildTimeout = 30 * time.Minute
	}
	if opts.MaxUpload <= 0 {
		opts.MaxUpload = 4 << 30
	}
	if opts.RegistryPrefix == "" {
		opts.RegistryPrefix = "localhost/runtime"
	}
	if opts.WorkDir == "" {
		opts.WorkDir = defaultWorkDir()
	}
	if opts.Logger == nil {
		opts.Logger = progress.Discard
	}
	if opts.LogRetention <= 0 {
		opts.LogRetention = time.Hour
	}
	if opts.StatusRetention <= 0 {
		opts.StatusRetention = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Limits = opts.Limits.withDefaults()
	dir, hold, err := makeWorkDir(opts.WorkDir, opts.Logger)
	if err != nil {
		return nil, err
	}
	opts.WorkDir = dir
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts: opts, ctx: ctx, cancel: cancel, queue: make(chan *build, opts.QueueSize),
		records: newRecords(opts.LogRetention, opts.StatusRetention, opts.Now, opts.Store),
		hold:    hold, conns: newConnTracker(opts.Limits.MaxConns), uploads: make(chan struct{}, opts.Limits.MaxUploads),
		statusRead: make(chan struct{}, 1),
	}
	s.recoverStore()
	for i := 0; i < opts.Workers; i++ {
		s.wg.Add(1)
		go s.work()
	}
	return s, nil
}

// Close cancels queued and running builds (they end CANCELLED), waits for the workers and
// removes the work directory. The handler keeps answering /build_status afterwards (new builds
// get 503), so that clients polling can be told; see AwaitReported.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	for {
		select {
		case b := <-s.queue:
			s.finish(b, runtimeapi.Cancelled, "", "the server stopped before the build started")
		default:
			return s.removeWorkDir()
		}
	}
}

// AwaitReported waits, after Close, until a client has read the CANCELLED status of every
// build the stop cancelled, or ctx ends; it reports whether every one was read.
func (s *Server) AwaitReported(ctx context.Context) bool {
	for {
		if s.records.unreported() == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-s.statusRead:
		}
	}
}
