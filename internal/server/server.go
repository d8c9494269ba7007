// Package server is a local Runtime API: the protocol of docs/protocol.md over HTTP, with builds
// run by a Builder: BuildKit (the Docker engine's own, or a buildkitd) or a check that builds nothing.
package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/runtimebuild/runtimebuild/internal/docker"
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
type ImageInfo struct {
	UploadTime string `json:"upload_time"` // RFC 3339
	SizeBytes  int64  `json:"image_size_bytes"`
}

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
	RegistryPrefix string
	Workers        int           // builds at once; default 1
	QueueSize      int           // accepted builds waiting for a worker; default 8
	BuildTimeout   time.Duration // a build past it ends as TIMEOUT; default 30 min
	MaxUpload      int64         // bytes of an archive, compressed and unpacked; default 4 GiB
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

	mu     sync.Mutex
	builds map[string]*build

	statusRead chan struct{} // a client read a terminal status (AwaitReported waits on it)
}

type build struct {
	job    *Job
	mu     sync.Mutex
	status runtimeapi.BuildStatus
	image  string
	err    string
	log    logBuffer
	ended  time.Time // when it reached its terminal status; zero while it runs

	// stopped: cancelled because the server stopped; reported: a client has read its terminal status.
	stopped, reported bool
}

func (b *build) set(status runtimeapi.BuildStatus, image, errText string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status, b.image, b.err = status, image, errText
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
		opts: opts, ctx: ctx, cancel: cancel, queue: make(chan *build, opts.QueueSize), builds: map[string]*build{},
		hold: hold, conns: newConnTracker(opts.Limits.MaxConns), uploads: make(chan struct{}, opts.Limits.MaxUploads),
		statusRead: make(chan struct{}, 1),
	}
	for i := 0; i < opts.Workers; i++ {
		s.wg.Add(1)
		go s.work()
	}
	return s, nil
}

// makeWorkDir makes this server's directory below base, private and locked for the server's
// life. base must be this user's alone: then what dead servers left in it is removed first.
// Anything else (a link, another user's directory, one open to others: planted, perhaps) is
// left alone, and a fresh private directory beside it is used instead.
func makeWorkDir(base string, log Logger) (string, io.Closer, error) {
	root, problem, err := openPrivate(base)
	if err != nil {
		return "", nil, fmt.Errorf("preparing the work directory %s: %w", base, err)
	}
	var dir string
	if problem != "" {
		log.Warnf("the work directory %s is %s: using a new private directory beside it, and cleaning up nothing", base, problem)
		if dir, err = os.MkdirTemp(filepath.Dir(base), filepath.Base(base)+"-"); err != nil {
			return "", nil, fmt.Errorf("making a private work directory: %w", err)
		}
	} else {
		defer root.Close()
		removeOrphans(root, base, log)
		suffix := make([]byte, 6)
		rand.Read(suffix)
		name := strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(suffix)
		if err := root.Mkdir(name, 0o700); err != nil {
			return "", nil, fmt.Errorf("making the work directory: %w", err)
		}
		dir = filepath.Join(base, name)
	}
	hold, err := holdDir(dir)
	if err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	return dir, hold, nil
}

// openPrivate makes base if it is missing and opens it, unless it is not this user's private
// directory: problem then says why.
func openPrivate(base string) (root *os.Root, problem string, err error) {
	if err := os.MkdirAll(filepath.Dir(base), 0o700); err != nil {
		return nil, "", err
	}
	if err := os.Mkdir(base, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, "", err
	}
	before, err := os.Lstat(base)
	switch {
	case err != nil:
		return nil, "", err
	case before.Mode()&fs.ModeSymlink != 0:
		return nil, "a symbolic link", nil
	case !before.IsDir():
		return nil, "not a directory", nil
	}
	if problem := notPrivate(before); problem != "" {
		return nil, problem, nil
	}
	root, err = os.OpenRoot(base)
	if err != nil {
		return nil, "", err
	}
	if after, err := root.Stat("."); err != nil || !os.SameFile(before, after) {
		root.Close()
		return nil, "replaced while it was opened", nil
	}
	return root, "", nil
}

// removeOrphans deletes the directories of servers that died without cleaning up: named
// after their process ID, locked by no running server, their process gone. Only directories
// of this user in base, through root: nothing outside base is ever touched.
func removeOrphans(root *os.Root, base string, log Logger) {
	d, err := root.Open(".")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, name := range names {
		pidText, _, _ := strings.Cut(name, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 {
			continue
		}
		release, ok := claimOrphan(root, base, name)
		if !ok {
			continue
		}
		if processAlive(pid) { // a server that does not lock (an older version) may still run
			release()
			continue
		}
		err = root.RemoveAll(name)
		release()
		if err == nil {
			log.Infof("removed the build files of an earlier server (process %d)", pid)
		}
	}
}

// removeWorkDir releases the lock on the work directory and removes it.
func (s *Server) removeWorkDir() error {
	s.holdOnce.Do(func() { s.hold.Close() }) // first: Windows removes nothing still open
	return os.RemoveAll(s.opts.WorkDir)
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
		if s.unreported() == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-s.statusRead:
		}
	}
}

func (s *Server) unreported() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, b := range s.builds {
		b.mu.Lock()
		if b.stopped && !b.reported {
			n++
		}
		b.mu.Unlock()
	}
	return n
}

// Handler serves the protocol.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /build", s.postBuild)
	mux.HandleFunc("GET /build_status", s.getStatus)
	mux.HandleFunc("GET /build_logs", s.getLogs)
	mux.HandleFunc("GET /build_logs/{id}", func(w http.ResponseWriter, r *http.Request) { // the original script's README form
		r.URL.RawQuery = url.Values{"build_id": {r.PathValue("id")}}.Encode()
		s.getLogs(w, r)
	})
	mux.HandleFunc("GET /registry_prefix", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"registry_prefix": s.opts.RegistryPrefix})
	})
	mux.HandleFunc("GET /image_exists", s.getImageExists)
	return s.authenticate(s.refuseWhenStopped(mux))
}

// refuseWhenStopped answers new builds with 503 once Close began; the rest keeps answering.
func (s *Server) refuseWhenStopped(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.ctx.Err() != nil && r.Method == http.MethodPost {
			writeError(w, http.StatusServiceUnavailable, "the server is stopping; send the build to another server or start this one again")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate answers 401 to a request without the key, and gives every request a write
// deadline: a client that does not read its answer holds nothing for long.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.opts.Limits.WriteTimeout))
		if !s.opts.NoAuth && subtle.ConstantTimeCompare([]byte(r.Header.Get("X-API-Key")), []byte(s.opts.Key)) != 1 {
			writeError(w, http.StatusUnauthorized, "missing or wrong X-API-Key")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) postBuild(w http.ResponseWriter, r *http.Request) {
	if len(s.queue) >= cap(s.queue) {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, "the build queue is full; try again later")
		return
	}
	select { // before the body is read: a client over the cap costs nothing
	case s.uploads <- struct{}{}:
		defer func() { <-s.uploads }()
	default:
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("%d uploads are under way, as many as this server receives at once; try again later", cap(s.uploads)))
		return
	}
	dir, err := os.MkdirTemp(s.opts.WorkDir, "build-")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "creating a build directory: "+err.Error())
		return
	}
	job, status, err := s.accept(w, r, dir)
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.opts.Limits.WriteTimeout)) // the upload took its time
	if err != nil {
		os.RemoveAll(dir)
		writeError(w, status, err.Error())
		return
	}
	b := &build{job: job, status: runtimeapi.Queued}
	s.mu.Lock()
	s.builds[job.ID] = b
	s.mu.Unlock()
	select {
	case s.queue <- b:
	default:
		s.finish(b, runtimeapi.Cancelled, "", "the build queue was full")
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, "the build queue is full; try again later")
		return
	}
	s.opts.Logger.Infof("build %s queued: %s (%s)", job.ID, job.TargetImage, job.Kind)
	writeJSON(w, http.StatusAccepted, map[string]string{"build_id": job.ID})
}

// accept receives the upload into dir and checks it; on error it returns the HTTP status.
// The body must keep up with Limits.MinBodyRate; once received, the archive is checked
// whether the client waits or not.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, dir string) (*Job, int, error) {
	limit := s.opts.MaxUpload
	// base64 text is 4/3 of the archive; the rest of the form is bounded by maxFormBytes.
	lim := s.opts.Limits
	// r.Body itself stays: the http.Server decides from it whether what is left is discarded.
	body := &pacedBody{
		ReadCloser: http.MaxBytesReader(w, r.Body, limit/3*4+4+2*maxFormBytes),
		rc:         http.NewResponseController(w), start: time.Now(), grace: lim.BodyGrace, rate: lim.MinBodyRate,
	}
	archive := filepath.Join(dir, "upload.tar.gz")
	f, err := os.OpenFile(archive, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	u, err := receive(r.Header.Get("Content-Type"), body, f, limit)
	if cerr := f.Close(); err == nil && cerr != nil {
		return nil, http.StatusInternalServerError, cerr
	}
	if err != nil {
		return nil, statusOf(err), err
	}
	tags, err := fullTags(u.TargetImage, u.Tags)
	if err != nil {
		return nil, statusOf(err), err
	}
	kind, err := inspect(s.ctx, archive, limit)
	if err != nil {
		return nil, statusOf(err), err
	}
	id := make([]byte, 12)
	rand.Read(id)
	return &Job{
		ID: hex.EncodeToString(id), Kind: kind, Archive: archive, Dir: dir, Target: u.Target,
		TargetImage: u.TargetImage, Tags: tags, MaxUnpacked: limit,
	}, 0, nil
}

// fullTags turns bare tags ("latest") into references in the target's repository and checks
// every reference: target and tags must parse as image references.
func fullTags(target string, tags []string) ([]string, error) {
	ref, err := name.ParseReference(target)
	if err != nil {
		return nil, badRequest{fmt.Sprintf("target_image %s is not an image reference: %v", quoteName(target), err)}
	}
	repo := ref.Context().Name()
	if tag, ok := ref.(name.Tag); ok && !strings.Contains(target, "@") {
		repo = strings.TrimSuffix(target, ":"+tag.TagStr()) // as the client spelled it
	}
	var out []string
	for _, t := range tags {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		full := t
		if !strings.ContainsAny(t, ":/@") {
			full = repo + ":" + t
		}
		ref, err := name.ParseReference(full)
		if err != nil {
			return nil, badRequest{fmt.Sprintf("the tag %s is neither a tag nor an image reference: %v", quoteName(t), err)}
		}
		if _, digest := ref.(name.Digest); digest {
			return nil, badRequest{fmt.Sprintf("the tag %s is a digest, which cannot be given to an image: send a tag", quoteName(t))}
		}
		out = append(out, full)
	}
	return out, nil
}

func statusOf(err error) int {
	var br badRequest
	var ua unsafeArchive
	switch {
	case errors.Is(err, errTooLarge), errors.Is(err, errFormTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errTooSlow):
		return http.StatusRequestTimeout
	case errors.As(err, &br), errors.As(err, &ua):
		return http.StatusUnprocessableEntity
	}
	return http.StatusBadRequest // the client went away or sent a broken body
}

func (s *Server) work() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case b := <-s.queue:
			s.run(b)
		}
	}
}

func (s *Server) run(b *build) {
	if s.ctx.Err() != nil {
		s.finish(b, runtimeapi.Cancelled, "", "the server stopped before the build started")
		return
	}
	b.set(runtimeapi.Working, "", "")
	s.opts.Logger.Infof("build %s: WORKING", b.job.ID)
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.BuildTimeout)
	defer cancel()
	image, err := s.opts.Builder.Build(ctx, b.job, &b.log)
	switch {
	case err == nil:
		s.finish(b, runtimeapi.Success, image, "")
	case s.ctx.Err() != nil:
		s.finish(b, runtimeapi.Cancelled, "", "the server stopped during the build")
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		s.finish(b, runtimeapi.Timeout, "", fmt.Sprintf("the build took longer than %s", s.opts.BuildTimeout))
	default:
		s.finish(b, runtimeapi.Failure, "", err.Error())
	}
}

func (s *Server) finish(b *build, status runtimeapi.BuildStatus, image, errText string) {
	os.RemoveAll(b.job.Dir) // first: a client told the build ended finds its files gone
	b.log.Compact()
	errText = boundText(errText, maxErrorText)
	b.mu.Lock()
	b.status, b.image, b.err = status, image, errText
	b.ended = s.opts.Now()
	b.stopped = status == runtimeapi.Cancelled && s.ctx.Err() != nil
	b.mu.Unlock()
	s.mu.Lock()
	s.forget()
	s.mu.Unlock()
	if errText != "" {
		s.opts.Logger.Infof("build %s: %s: %s", b.job.ID, status, errText)
	} else {
		s.opts.Logger.Infof("build %s: %s %s", b.job.ID, status, image)
	}
}

// boundText keeps text within max bytes: its head (the failing step) and its tail (the last lines).
func boundText(text string, max int) string {
	if len(text) <= max {
		return text
	}
	const cut = "\n[... cut ...]\n"
	head := (max - len(cut)) / 4
	return strings.ToValidUTF8(text[:head]+cut+text[len(text)-(max-len(cut)-head):], "")
}

// keptLogs is how many finished builds keep their logs (the latest): with the 1 MiB per build,
// finished builds hold at most 64 MiB of logs however many end within LogRetention.
const keptLogs = 64

// forget drops the logs of builds finished more than LogRetention ago or beyond the latest
// keptLogs, and the builds finished more than StatusRetention ago; the caller holds s.mu.
func (s *Server) forget() {
	now := s.opts.Now()
	var withLogs []*build
	for id, b := range s.builds {
		b.mu.Lock()
		ended := b.ended
		b.mu.Unlock()
		switch {
		case ended.IsZero():
		case now.Sub(ended) > s.opts.StatusRetention:
			delete(s.builds, id)
		case now.Sub(ended) > s.opts.LogRetention:
			b.log.Drop()
		case !b.log.Dropped():
			withLogs = append(withLogs, b)
		}
	}
	if len(withLogs) <= keptLogs {
		return
	}
	slices.SortFunc(withLogs, func(x, y *build) int { return y.endedAt().Compare(x.endedAt()) })
	for _, b := range withLogs[keptLogs:] {
		b.log.Drop()
	}
}

func (b *build) endedAt() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ended
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *build {
	id := r.URL.Query().Get("build_id")
	s.mu.Lock()
	s.forget()
	b := s.builds[id]
	s.mu.Unlock()
	if b == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("build %q not found", id))
	}
	return b
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	b := s.lookup(w, r)
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]string{"build_id": b.job.ID, "status": b.status.String()}
	if b.image != "" {
		out["image"] = b.image
	}
	if n, ok := s.opts.Builder.(interface{ Note() string }); ok && b.status.Succeeded() {
		out["message"] = n.Note()
	}
	if b.err != "" {
		out["error"] = b.err
	}
	if !b.ended.IsZero() && !b.reported {
		b.reported = true
		select {
		case s.statusRead <- struct{}{}:
		default:
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getLogs(w http.ResponseWriter, r *http.Request) {
	b := s.lookup(w, r)
	if b == nil {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	logs, dropped := b.log.Bytes()
	if dropped {
		writeError(w, http.StatusGone, fmt.Sprintf("the logs of build %s were dropped %s after it ended; /build_status still answers", b.job.ID, s.opts.LogRetention))
		return
	}
	w.Write(logs)
}

func (s *Server) getImageExists(w http.ResponseWriter, r *http.Request) {
	image := r.URL.Query().Get("image")
	if image == "" {
		writeError(w, http.StatusUnprocessableEntity, "image is required")
		return
	}
	if _, err := docker.ParseImage(image); err != nil { // never an option, never a path: an image name
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	ok, err := s.opts.Builder.ImageExists(r.Context(), image)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	answer := map[string]any{"exists": ok, "image": nil}
	if d, describes := s.opts.Builder.(ImageDescriber); ok && describes {
		if info, err := d.DescribeImage(r.Context(), image); err == nil {
			answer["image"] = info
		}
	}
	writeJSON(w, http.StatusOK, answer)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]string{"detail": detail})
}

// maxLog is how much of a build's output is kept: the last MiB.
const maxLog = 1 << 20

// logBuffer keeps the last maxLog bytes of a build's output, starting at a line.
type logBuffer struct {
	mu      sync.Mutex
	buf     []byte
	cut     bool // earlier output was dropped to stay within maxLog
	dropped bool // the retention period ended: nothing is kept any more
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dropped {
		return len(p), nil
	}
	if len(p) > maxLog {
		p, l.cut, l.buf = p[len(p)-maxLog:], true, l.buf[:0]
	}
	l.buf = append(l.buf, p...)
	if len(l.buf) > 2*maxLog { // trimmed at twice the size, so a write costs O(len(p)) on average
		l.trim()
	}
	return len(p), nil
}

func (l *logBuffer) trim() {
	if over := len(l.buf) - maxLog; over > 0 {
		keep := l.buf[over:]
		if i := bytes.IndexByte(keep, '\n'); i >= 0 && i < len(keep)-1 {
			keep = keep[i+1:]
		}
		l.buf = append(l.buf[:0], keep...)
		l.cut = true
	}
}

// Bytes returns a copy of the last maxLog bytes written (with a note when earlier output was
// cut), and whether the logs were dropped.
func (l *logBuffer) Bytes() ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.trim()
	var out []byte
	if l.cut {
		out = append(out, "[earlier output cut: the last MiB is kept]\n"...)
	}
	return append(out, l.buf...), l.dropped
}

// Compact keeps only the last maxLog bytes, in a buffer of their size (a build that ended).
func (l *logBuffer) Compact() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.trim()
	l.buf = append([]byte(nil), l.buf...)
}

// Dropped reports whether Drop was called.
func (l *logBuffer) Dropped() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// Drop frees the logs for good.
func (l *logBuffer) Drop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf, l.dropped = nil, true
}
