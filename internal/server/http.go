package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/runtimebuild/runtimebuild/internal/docker"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// Handler serves the protocol.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+runtimeapi.PathBuild, s.postBuild)
	mux.HandleFunc("POST "+runtimeapi.PathBuildCancel, s.postCancel)
	mux.HandleFunc("GET "+runtimeapi.PathBuildStatus, s.getStatus)
	mux.HandleFunc("GET "+runtimeapi.PathBuildLogs, s.getLogs)
	mux.HandleFunc("GET "+runtimeapi.PathBuildLogs+"/{id}", func(w http.ResponseWriter, r *http.Request) { // the original script's README form
		r.URL.RawQuery = url.Values{runtimeapi.ParamBuildID: {r.PathValue("id")}}.Encode()
		s.getLogs(w, r)
	})
	mux.HandleFunc("GET "+runtimeapi.PathRegistryPrefix, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, runtimeapi.RegistryPrefixAnswer{RegistryPrefix: s.opts.RegistryPrefix})
	})
	mux.HandleFunc("GET "+runtimeapi.PathImageExists, s.getImageExists)
	return s.authenticate(s.refuseWhenStopped(mux))
}

// refuseWhenStopped answers new builds with 503 once Close began; the rest keeps answering.
func (s *Server) refuseWhenStopped(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.ctx.Err() != nil && r.Method == http.MethodPost && r.URL.Path == runtimeapi.PathBuild {
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
	b := newBuild(job, s.opts.Now())
	s.records.add(b)
	s.store(b)
	select {
	case s.queue <- b:
	default:
		s.finish(b, runtimeapi.Cancelled, "", "the build queue was full")
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, "the build queue is full; try again later")
		return
	}
	s.opts.Logger.Infof("build %s queued: %s (%s)", job.ID, job.TargetImage, job.Kind)
	writeJSON(w, http.StatusAccepted, runtimeapi.BuildAnswer{BuildID: job.ID})
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
	u, err := receive(r.Header.Get("Content-Type"), body, f, limit, s.checkField)
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
	trust := s.trust()
	if err := trust.checkName(runtimeapi.FieldTargetImage, u.TargetImage); err != nil {
		return nil, statusOf(err), err
	}
	for _, t := range tags {
		if err := trust.checkName("the tag", t); err != nil {
			return nil, statusOf(err), err
		}
	}
	kind, err := inspect(s.ctx, archive, limit)
	if err != nil {
		return nil, statusOf(err), err
	}
	id := make([]byte, 12)
	rand.Read(id)
	return &Job{
		ID: hex.EncodeToString(id), Kind: kind, Archive: archive, Dir: dir, Target: u.Target,
		TargetImage: u.TargetImage, Tags: tags, MaxUnpacked: limit, Trust: trust,
	}, 0, nil
}

// trust is the boundary the options draw.
func (s *Server) trust() Trust {
	return Trust{Prefix: s.opts.RegistryPrefix, LocalImages: s.opts.LocalImages, PrivateURLs: s.opts.AllowPrivateURLs,
		LocalImagesName: s.opts.LocalImagesName, PrivateURLsName: s.opts.PrivateURLsName}
}

// checkField refuses a name outside the prefix as soon as its field is read: a form that sends
// target_image (and full tags) before the context is refused before the context is read.
func (s *Server) checkField(field, value string) error {
	switch {
	case field == runtimeapi.FieldTargetImage:
		return s.trust().checkName(runtimeapi.FieldTargetImage, value)
	case strings.HasPrefix(field, runtimeapi.FieldTags) && strings.ContainsAny(value, ":/@"):
		return s.trust().checkName("the tag", value)
	}
	return nil
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

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *build {
	id := r.URL.Query().Get(runtimeapi.ParamBuildID)
	b := s.records.get(id)
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
	out := runtimeapi.Status{BuildID: b.job.ID, Status: b.status, Image: b.image, Error: b.err, ElapsedSeconds: b.elapsed(s.opts.Now())}
	if b.status.Succeeded() {
		out.Digest, out.Message, out.CheckedOnly = b.job.Digest, b.note, b.checked
	}
	if !b.ended.IsZero() {
		out.Telemetry = b.job.Telemetry
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
	if err := s.trust().check("image", image); err != nil { // only the prefix's registry is ever asked
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	ok, err := s.opts.Builder.ImageExists(r.Context(), image)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	answer := runtimeapi.ImageExistsAnswer{Exists: ok}
	if d, describes := s.opts.Builder.(ImageDescriber); ok && describes {
		if info, err := d.DescribeImage(r.Context(), image); err == nil {
			answer.Image = &info
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
	writeJSON(w, status, runtimeapi.ErrorAnswer{Detail: detail})
}

// cancelWait bounds how long POST /build/cancel waits for a running build to stop.
const cancelWait = 20 * time.Second

// postCancel cancels a queued or running build and answers its terminal status: CANCELLED, or
// the status it had already reached. A build whose builder has not stopped within cancelWait
// is answered 202 with its current status; it ends CANCELLED when the builder returns.
func (s *Server) postCancel(w http.ResponseWriter, r *http.Request) {
	b := s.lookup(w, r)
	if b == nil {
		return
	}
	switch s.cancelBuild(b) {
	case runtimeapi.Queued:
		s.finish(b, runtimeapi.Cancelled, "", "cancelled by a client before it started")
	case runtimeapi.Working:
		s.opts.Logger.Infof("build %s: cancel requested", b.job.ID)
		wait := time.NewTimer(cancelWait)
		defer wait.Stop()
		select {
		case <-b.done:
		case <-wait.C:
		case <-r.Context().Done():
			return
		}
	}
	b.mu.Lock()
	answer := runtimeapi.CancelAnswer{BuildID: b.job.ID, Status: b.status}
	b.mu.Unlock()
	code := http.StatusOK
	if !answer.Status.Terminal() {
		code = http.StatusAccepted
	}
	writeJSON(w, code, answer)
}
