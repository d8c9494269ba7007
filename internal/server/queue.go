package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

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

func (s *Server) run(b *build) {
	if s.ctx.Err() != nil {
		s.finish(b, runtimeapi.Cancelled, "", "the server stopped before the build started")
		return
	}
	b.set(runtimeapi.Working, "", "")
	b.mu.Lock()
	b.started = s.opts.Now()
	b.mu.Unlock()
	s.store(b)
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
	if t := b.job.Telemetry; t != nil && !b.started.IsZero() {
		t.QueuedSeconds = b.started.Sub(b.queued).Seconds()
	}
	b.mu.Unlock()
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
