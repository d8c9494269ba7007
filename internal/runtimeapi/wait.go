package runtimeapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/progress"
)

// ErrBuildTimeout is returned by WaitForBuild when the deadline passes first (the caller names
// the setting behind the deadline).
var ErrBuildTimeout = errors.New("time limit reached")

// ErrLogsUnsupported is returned by BuildLogs when the server does not offer /build_logs (404).
var ErrLogsUnsupported = errors.New("the Runtime API does not offer /build_logs")

// Clock is the time WaitForBuild reads and waits on; tests inject a fake one.
type Clock = progress.Clock

// LogTailLines is how many of a failed build's last log lines BuildFailedError carries.
const LogTailLines = 30

// Wait tunes WaitForBuild.
type Wait struct {
	FirstPoll    time.Duration // first wait; zero: 1 s (or Interval when shorter)
	Interval     time.Duration // longest wait between polls (POLL_INTERVAL)
	Deadline     time.Time     // give up then (BUILD_TIMEOUT), on Clock's time; zero: never
	ResumeAdvice string        // how to resume, for the timeout message
	OnStatus     func(status BuildStatus, elapsed time.Duration)
	// OnLog, when not nil, receives each new line of /build_logs while the build goes on
	// (the first look shows at most the last LogTailLines lines). nil: logs are not followed.
	OnLog func(line string)
	Clock Clock // nil: the real time
}

// WaitForBuild polls /build_status until the build ends, within w.Deadline (ctx's deadline, if
// any, cuts a poll in flight). Each poll is one request (BuildStatus): a poll that fails (network, 5xx, a body that is not JSON) is simply followed by the
// next one, after the same backoff as any other poll (nextWait), until the deadline. Answers
// that cannot heal (401, 403, 404) end it at once. SUCCESS returns the server's image (empty
// when the server names none); a failed build returns a *BuildFailedError with its log's last lines.
func (c *Client) WaitForBuild(ctx context.Context, buildID string, w Wait) (Status, error) {
	clock := w.Clock
	if clock == nil {
		clock = progress.SystemClock
	}
	start := clock.Now()
	var last BuildStatus
	lastWarning := ""
	logs := &logFollower{onLine: w.OnLog}
	var wait time.Duration
	lastLook := false
	timeout := func() error {
		return fmt.Errorf("%w: build %s still %s after %s; %s",
			ErrBuildTimeout, buildID, orUnknown(last), clock.Now().Sub(start).Round(time.Second), w.ResumeAdvice)
	}
	ended := func() error { // our deadline or the caller's (BUILD_TIMEOUT), or Ctrl-C
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return timeout()
		}
		return ctx.Err()
	}
	for {
		s, err := c.BuildStatus(ctx, buildID)
		var retryAfter time.Duration
		switch {
		case err == nil:
			s.Status = ParseBuildStatus(string(s.Status))
			elapsed := clock.Now().Sub(start)                                            // since following began, unless the server says since the build began
			if s.ElapsedSeconds > 0 && s.ElapsedSeconds < (366*24*time.Hour).Seconds() { // a year bounds what a server may claim
				elapsed = time.Duration(s.ElapsedSeconds * float64(time.Second))
			}
			if s.Status != last {
				c.opts.Logger.Infof("build %s: %s (%s)", buildID, s.Status, elapsed.Round(time.Second))
				last = s.Status
			}
			if w.OnStatus != nil {
				w.OnStatus(s.Status, elapsed)
			}
			if s.Status.Terminal() {
				logs.follow(ctx, c, buildID, true)
				if s.Status.Succeeded() {
					if s.Message != "" {
						c.opts.Logger.Infof("build %s: %s", buildID, s.Message)
					}
					return s, nil
				}
				return s, &BuildFailedError{BuildID: buildID, Status: s.Status, Reason: s.Error, LogTail: logs.tail()}
			}
			lastWarning = ""
		case ctx.Err() != nil:
			return Status{Status: last}, ended()
		case hopeless(err):
			return Status{Status: last}, fmt.Errorf("following build %s: %w", buildID, err)
		default:
			var herr *HTTPError
			if errors.As(err, &herr) {
				retryAfter = herr.RetryAfter
			}
			if msg := err.Error(); msg != lastWarning { // a server down for minutes is one line, not one per poll
				c.opts.Logger.Warnf("polling build %s: %v; polling on until the deadline", buildID, err)
				lastWarning = msg
			}
		}
		logs.follow(ctx, c, buildID, false)

		wait = nextWait(wait, w, retryAfter)
		pause := wait
		if !w.Deadline.IsZero() {
			left := w.Deadline.Sub(clock.Now())
			if lastLook || left <= 0 {
				return Status{Status: last}, timeout()
			}
			if left < wait { // one last look just before the deadline, not giving up a whole wait early
				pause, lastLook = left*9/10, true
			}
		}
		select {
		case <-ctx.Done():
			return Status{Status: last}, ended()
		case <-clock.After(pause):
		}
	}
}

// nextWait is the one backoff of polling, successful or not: the first wait is w.FirstPoll
// (default 1 s), each next one doubles, never beyond w.Interval; a server's Retry-After is
// honoured up to w.Interval.
func nextWait(prev time.Duration, w Wait, retryAfter time.Duration) time.Duration {
	next := prev * 2
	if prev == 0 {
		next = w.FirstPoll
		if next == 0 {
			next = time.Second
		}
	}
	next = max(next, retryAfter)
	if w.Interval > 0 {
		next = min(next, w.Interval)
	}
	return max(next, time.Millisecond)
}

// maxLogBody bounds what one look at /build_logs reads.
const maxLogBody = 4 << 20

// BuildLogs asks once for the log of a build so far (GET /build_logs?build_id=). A 404 is
// ErrLogsUnsupported: the server does not offer logs (or not for this build), which is no error
// of the build.
func (c *Client) BuildLogs(ctx context.Context, buildID string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	req, err := c.request(ctx, http.MethodGet, PathBuildLogs, url.Values{ParamBuildID: {buildID}}, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := c.send(req, "GET "+PathBuildLogs)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", ErrLogsUnsupported
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		return "", &RedirectError{Op: "GET " + PathBuildLogs, StatusCode: resp.StatusCode, Location: c.redact.Replace(resp.Header.Get("Location"))}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		text, fromJSON := detail(resp.Body)
		return "", &HTTPError{Op: "GET " + PathBuildLogs, StatusCode: resp.StatusCode, Detail: c.redact.Replace(text), JSONDetail: fromJSON}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxLogBody))
	if err != nil {
		return "", fmt.Errorf("GET /build_logs: %w", scrub(err))
	}
	return c.redact.Replace(string(b)), nil // a log may quote the key: it is printed
}

// logFollower turns successive looks at a growing log into new lines. The server may keep
// only the end of a long log, so a look that no longer starts with what was seen is matched
// on the last line seen.
type logFollower struct {
	onLine      func(string)
	unsupported bool
	started     bool
	consumed    int    // bytes of the previous look up to its last complete line
	lastLine    string // the last complete line handed on, "\n" included
	recent      []string
}

// follow looks at the log once and hands on its new complete lines (all of them when final).
// A 404 turns following off for good, silently; other failures wait for the next look.
func (f *logFollower) follow(ctx context.Context, c *Client, id string, final bool) {
	if f.onLine == nil || f.unsupported {
		return
	}
	body, err := c.BuildLogs(ctx, id)
	if errors.Is(err, ErrLogsUnsupported) {
		f.unsupported = true
		return
	}
	if err != nil {
		return
	}
	lines := f.feed(body, final)
	if !f.started {
		f.started = true
		if skipped := len(lines) - LogTailLines; skipped > 0 {
			f.onLine(fmt.Sprintf("(%d earlier log lines not shown)", skipped))
			lines = lines[skipped:]
		}
	}
	for _, l := range lines {
		f.onLine(l)
	}
}

// feed returns the lines of body not handed on before: complete lines, and when final also
// an unterminated last line.
func (f *logFollower) feed(body string, final bool) []string {
	from := 0
	switch {
	case f.consumed == 0:
	case f.consumed <= len(body) && strings.HasSuffix(body[:f.consumed], f.lastLine):
		from = f.consumed
	default: // the server dropped the log's head: go on after the last line seen
		if i := strings.LastIndex(body, f.lastLine); i >= 0 {
			from = i + len(f.lastLine)
		}
	}
	fresh := body[from:]
	end := strings.LastIndexByte(fresh, '\n') + 1
	var lines []string
	if end > 0 {
		lines = strings.Split(fresh[:end-1], "\n")
		f.consumed = from + end
		f.lastLine = fresh[strings.LastIndexByte(fresh[:end-1], '\n')+1 : end]
	}
	if final && end < len(fresh) {
		lines = append(lines, fresh[end:])
	}
	for _, l := range lines {
		f.recent = append(f.recent, strings.TrimSuffix(l, "\r"))
	}
	if n := len(f.recent) - LogTailLines; n > 0 {
		f.recent = append([]string(nil), f.recent[n:]...)
	}
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// tail is the last lines of the log seen.
func (f *logFollower) tail() []string { return append([]string(nil), f.recent...) }

func hopeless(err error) bool {
	var uerr *UnreachableError
	var rerr *RedirectError
	if errors.As(err, &uerr) || errors.As(err, &rerr) || errors.Is(err, ErrOtherBuild) {
		return true // a wrong URL, or answers from elsewhere: polling on changes nothing
	}
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

func orUnknown(s BuildStatus) string {
	if s == "" {
		return "without a status"
	}
	return string(s)
}
