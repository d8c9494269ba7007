package server

import (
	"encoding/json"
	"time"

	buildrecords "github.com/runtimebuild/runtimebuild/internal/records"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// This file keeps the builds' records in a Store (records.Store: bbolt in SERVE_STATE_DIR) as
// well as in memory, so that a restarted server still answers for them.

// Store keeps build records across restarts; *buildrecords.Store is one.
type Store interface {
	Put(buildrecords.Record) error
	Get(id string) (buildrecords.Record, bool, error)
	Recover(now time.Time, status runtimeapi.BuildStatus, why string) (int, error)
	Prune(now time.Time) (int, error)
}

var _ Store = (*buildrecords.Store)(nil)

// restartedError is what a build answers when a server died while it was queued or ran.
const restartedError = "serve restarted while this build was queued or running (it was stopped or killed): nothing of the build was kept; send it again"

// recoverStore ends the builds an earlier server left unended and prunes what is past its
// bounds, when the server starts.
func (s *Server) recoverStore() {
	st := s.opts.Store
	if st == nil {
		return
	}
	if n, err := st.Recover(s.opts.Now(), runtimeapi.InternalError, restartedError); err != nil {
		s.opts.Logger.Warnf("reading the build records: %v", err)
	} else if n > 0 {
		s.opts.Logger.Infof("%d builds of an earlier serve ended INTERNAL_ERROR: it stopped while they were queued or ran", n)
	}
	st.Prune(s.opts.Now())
}

// store writes b's record; an ended build's with its log's tail, then prunes.
func (s *Server) store(b *build) {
	st := s.opts.Store
	if st == nil {
		return
	}
	b.mu.Lock()
	r := buildrecords.Record{
		ID: b.job.ID, Status: b.status, TargetImage: b.job.TargetImage, Image: b.image, Digest: b.job.Digest, Error: b.err,
		Message: b.note, CheckedOnly: b.checked,
		Queued: b.queued, Started: b.started, Ended: b.ended,
	}
	if b.job.Telemetry != nil {
		r.Telemetry, _ = json.Marshal(b.job.Telemetry)
	}
	b.mu.Unlock()
	if !r.Ended.IsZero() {
		r.LogTail, _ = b.log.Bytes()
	}
	if err := st.Put(r); err != nil {
		s.opts.Logger.Warnf("build %s: recording its %s in the state directory: %v", r.ID, r.Status, err)
		return
	}
	if !r.Ended.IsZero() {
		st.Prune(s.opts.Now())
	}
}

// restored is a build the store remembers and memory does not (an earlier server's, or one
// past the memory's retention), as the handlers read builds.
func restored(r buildrecords.Record) *build {
	b := &build{
		job:    &Job{ID: r.ID, TargetImage: r.TargetImage, Digest: r.Digest},
		status: r.Status, image: r.Image, err: r.Error, queued: r.Queued, started: r.Started, ended: r.Ended,
		note: r.Message, checked: r.CheckedOnly,
		reported: true,
	}
	if len(r.Telemetry) > 0 {
		var t runtimeapi.Telemetry
		if json.Unmarshal(r.Telemetry, &t) == nil {
			b.job.Telemetry = &t
		}
	}
	b.log.Write(r.LogTail)
	return b
}
