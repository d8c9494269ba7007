package server

import (
	"bytes"
	"slices"
	"sync"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// This file is the server's memory of builds: their records (status, image, error, logs) and
// how long they are kept. The queue and the handlers reach it only through records' methods, so
// that another store can take its place.

// build is the record of one accepted build.
type build struct {
	job        *Job
	mu         sync.Mutex
	status     runtimeapi.BuildStatus
	image      string
	err        string
	note       string // the builder's message with a SUCCESS (the check builder's)
	checked    bool   // a SUCCESS of a builder that builds nothing (CheckBuilder): checked_only
	log        logBuffer
	ended      time.Time // when it reached its terminal status; zero while it runs
	queued     time.Time // when it was accepted
	started    time.Time // when a worker took it; zero before
	cancel     func()    // ends the build's context once it runs; nil before
	finishOnce sync.Once
	done       chan struct{} // closed when the build reached its terminal status

	// stopped: cancelled because the server stopped; reported: a client has read its terminal status.
	stopped, reported bool
}

func newBuild(job *Job, queued time.Time) *build {
	return &build{job: job, status: runtimeapi.Queued, queued: queued, done: make(chan struct{})}
}

// elapsed is the time since the build was accepted, at now; an ended build's is the time it took
// to its end. Zero when its record holds no time (the wire then leaves elapsed_seconds out).
// The caller holds b.mu.
func (b *build) elapsed(now time.Time) float64 {
	if b.queued.IsZero() {
		return 0
	}
	end := b.ended
	if end.IsZero() {
		end = now
	}
	return max(end.Sub(b.queued), 0).Round(time.Millisecond).Seconds()
}

func (b *build) endedAt() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ended
}

// keptLogs is how many finished builds keep their logs (the latest): with the 1 MiB per build,
// finished builds hold at most 64 MiB of logs however many end within LogRetention.
const keptLogs = 64

// records holds the builds the server accepted, in memory, until their retention ends.
type records struct {
	logRetention, statusRetention time.Duration
	now                           func() time.Time

	store Store // nil: memory only

	mu     sync.Mutex
	builds map[string]*build
}

func newRecords(logRetention, statusRetention time.Duration, now func() time.Time, store Store) *records {
	return &records{logRetention: logRetention, statusRetention: statusRetention, now: now, store: store, builds: map[string]*build{}}
}

// add records a build just accepted.
func (r *records) add(b *build) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.builds[b.job.ID] = b
}

// get returns the build of that ID, nil when it is unknown or forgotten.
func (r *records) get(id string) *build {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forget()
	if b := r.builds[id]; b != nil || r.store == nil {
		return b
	}
	if rec, ok, err := r.store.Get(id); err == nil && ok {
		return restored(rec)
	}
	return nil
}

// ended applies retention after a build reached its terminal status.
func (r *records) ended() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forget()
}

// unreported counts the builds the server's stop cancelled whose status no client has read yet.
func (r *records) unreported() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, b := range r.builds {
		b.mu.Lock()
		if b.stopped && !b.reported {
			n++
		}
		b.mu.Unlock()
	}
	return n
}

// keptBuilds is how many ended builds memory holds (the latest): a server asked about many
// builds stays within a few MiB. An older one is answered from the Store, when there is one.
const keptBuilds = 1000

// forget drops the builds finished more than statusRetention ago or beyond the latest
// keptBuilds, and the logs of builds finished more than logRetention ago or beyond the latest
// keptLogs; the caller holds r.mu.
func (r *records) forget() {
	now := r.now()
	var ended []*build
	for id, b := range r.builds {
		at := b.endedAt()
		switch {
		case at.IsZero():
		case now.Sub(at) > r.statusRetention:
			delete(r.builds, id)
		default:
			if now.Sub(at) > r.logRetention {
				b.log.Drop()
			}
			ended = append(ended, b)
		}
	}
	if len(ended) <= keptLogs {
		return
	}
	slices.SortFunc(ended, func(x, y *build) int { return y.endedAt().Compare(x.endedAt()) })
	for i, b := range ended[keptLogs:] {
		b.log.Drop()
		if keptLogs+i >= keptBuilds {
			delete(r.builds, b.job.ID)
		}
	}
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
