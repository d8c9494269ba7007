package runtimeapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Terminal statuses (those of Google Cloud Build); anything else means the build goes on.
var (
	succeeded = map[string]bool{"SUCCESS": true}
	failed    = map[string]bool{"FAILURE": true, "INTERNAL_ERROR": true, "TIMEOUT": true, "CANCELLED": true, "EXPIRED": true}
)

// ErrBuildTimeout is returned by WaitForBuild when the deadline passes first.
var ErrBuildTimeout = errors.New("BUILD_TIMEOUT reached")

// Wait tunes WaitForBuild.
type Wait struct {
	FirstPoll    time.Duration // first wait; zero: 1 s (or Interval when shorter)
	Interval     time.Duration // longest wait between polls (POLL_INTERVAL)
	Deadline     time.Time     // give up then (BUILD_TIMEOUT); zero: never
	ResumeAdvice string        // how to resume, for the timeout message
	OnStatus     func(status string, elapsed time.Duration)
}

// WaitForBuild polls /build_status until the build ends. A quick build is seen in about a
// second; the waits double up to w.Interval. Polls that fail are retried until the deadline,
// except answers that cannot heal (401, 403, 404). SUCCESS returns the server's image (empty
// when the server names none); a failed build returns a *BuildFailedError.
func (c *Client) WaitForBuild(ctx context.Context, buildID string, w Wait) (Status, error) {
	wait := w.FirstPoll
	if wait == 0 {
		wait = time.Second
	}
	wait = min(wait, w.Interval)
	start := time.Now()
	last := ""
	lastPoll := false
	pollCtx := ctx
	if !w.Deadline.IsZero() {
		var cancel context.CancelFunc
		pollCtx, cancel = context.WithDeadline(ctx, w.Deadline)
		defer cancel()
	}
	timeout := func() error {
		return fmt.Errorf("%w: build %s still %s after %s; %s",
			ErrBuildTimeout, buildID, orUnknown(last), time.Since(start).Round(time.Second), w.ResumeAdvice)
	}
	for {
		s, err := c.BuildStatus(pollCtx, buildID)
		switch {
		case err == nil:
			status := strings.ToUpper(strings.TrimSpace(s.Status))
			if status == "" {
				status = "STATUS_UNKNOWN"
			}
			if status != last {
				c.opts.Logger.Infof("build %s: %s (%s)", buildID, status, time.Since(start).Round(time.Second))
				last = status
			}
			if w.OnStatus != nil {
				w.OnStatus(status, time.Since(start))
			}
			s.Status = status
			if succeeded[status] {
				if s.Message != "" {
					c.opts.Logger.Infof("build %s: %s", buildID, s.Message)
				}
				return s, nil
			}
			if failed[status] {
				return s, &BuildFailedError{BuildID: buildID, Status: status, Reason: s.Error}
			}
		case pollCtx.Err() != nil:
			return Status{Status: last}, ended(pollCtx, timeout)
		case hopeless(err):
			return Status{Status: last}, fmt.Errorf("following build %s: %w", buildID, err)
		default:
			c.opts.Logger.Warnf("polling build %s: %v; trying again", buildID, err)
		}
		if !w.Deadline.IsZero() {
			left := time.Until(w.Deadline)
			if lastPoll || left <= 0 {
				return Status{Status: last}, timeout()
			}
			if left < wait { // one last look just before the deadline, not giving up a whole wait early
				wait, lastPoll = left*9/10, true
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-pollCtx.Done():
			t.Stop()
			return Status{Status: last}, ended(pollCtx, timeout)
		case <-t.C:
		}
		wait = min(wait*2, w.Interval)
	}
}

// ended tells a deadline (BUILD_TIMEOUT, ours or the caller's) from a cancellation (Ctrl-C).
func ended(ctx context.Context, timeout func() error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return timeout()
	}
	return ctx.Err()
}

func hopeless(err error) bool {
	var herr *HTTPError
	if !errors.As(err, &herr) {
		return false
	}
	switch herr.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

func orUnknown(s string) string {
	if s == "" {
		return "without a status"
	}
	return s
}
