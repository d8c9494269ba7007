package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

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

// errCancelRequested is the cause of a build's context when a client cancelled it.
var errCancelRequested = errors.New("cancelled by a client")

func (s *Server) run(b *build) {
	if s.ctx.Err() != nil {
		s.finish(b, runtimeapi.Cancelled, "", "the server stopped before the build started")
		return
	}
	cctx, cancelCause := context.WithCancelCause(s.ctx)
	defer cancelCause(nil)
	if !b.start(func() { cancelCause(errCancelRequested) }, s.opts.Now()) {
		return // cancelled while queued: already finished
	}
	s.store(b)
	s.opts.Logger.Infof("build %s: WORKING", b.job.ID)
	ctx, cancel := context.WithTimeout(cctx, s.opts.BuildTimeout)
	defer cancel()
	image, err := s.opts.Builder.Build(ctx, b.job, &b.log)
	switch {
	case err == nil:
		s.finish(b, runtimeapi.Success, image, "")
	case s.ctx.Err() != nil:
		s.finish(b, runtimeapi.Cancelled, "", "the server stopped during the build")
	case errors.Is(context.Cause(cctx), errCancelRequested):
		s.finish(b, runtimeapi.Cancelled, "", "cancelled by a client during the build")
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		s.finish(b, runtimeapi.Timeout, "", fmt.Sprintf("the build took longer than %s", s.opts.BuildTimeout))
	default:
		s.finish(b, runtimeapi.Failure, "", err.Error())
	}
}

// start moves a queued build to WORKING (at now) with cancel as the way to stop it; false when a client
// cancelled it first.
func (b *build) start(cancel func(), now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.status != runtimeapi.Queued {
		return false
	}
	b.status, b.cancel, b.started = runtimeapi.Working, cancel, now
	return true
}

// cancelBuild asks b to stop and returns the status it had: a queued build is marked CANCELLED
// at once (the caller finishes it), a running one has its context cancelled, an ended one is
// left as it is.
func (s *Server) cancelBuild(b *build) runtimeapi.BuildStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	was := b.status
	switch {
	case was == runtimeapi.Queued:
		b.status = runtimeapi.Cancelled
	case was == runtimeapi.Working && b.cancel != nil:
		b.cancel()
	}
	return was
}

// finish records the build's terminal status, once: a build cancelled while queued is finished
// by the cancel, and whoever comes later (the worker, Close) leaves it.
func (s *Server) finish(b *build, status runtimeapi.BuildStatus, image, errText string) {
	first := false
	b.finishOnce.Do(func() { first = true })
	if !first {
		return
	}
	os.RemoveAll(b.job.Dir) // first: a client told the build ended finds its files gone
	b.log.Compact()
	errText = boundText(errText, maxErrorText)
	b.mu.Lock()
	b.status, b.image, b.err = status, image, errText
	b.ended = s.opts.Now()
	if n, ok := s.opts.Builder.(checksOnly); ok && status.Succeeded() {
		b.note, b.checked = n.Note(), true
	}
	b.stopped = status == runtimeapi.Cancelled && s.ctx.Err() != nil
	if t := b.job.Telemetry; t != nil && !b.started.IsZero() {
		t.QueuedSeconds = b.started.Sub(b.queued).Seconds()
	}
	b.mu.Unlock()
	close(b.done)
	s.store(b)
	s.records.ended()
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
