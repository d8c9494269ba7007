package runtimeapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// URLReason is why New refuses a base URL.
type URLReason int

// The base URLs New refuses.
const (
	NotHTTP        URLReason = iota + 1 // not an http:// or https:// URL with a host
	HasCredentials                      // it carries a user or password: the key has its own header
	InsecureHTTP                        // plain http to a host other than loopback, without Options.AllowInsecureHTTP
)

// URLError is a base URL New refuses. URL is the URL without its user information, which may
// be the key.
type URLError struct {
	URL    string
	Reason URLReason
}

func (e *URLError) Error() string {
	switch e.Reason {
	case HasCredentials:
		return "the Runtime API URL must not carry credentials: the key travels in the X-API-Key header"
	case InsecureHTTP:
		return fmt.Sprintf("%q is plain http to another host: the API key would cross the network unencrypted", e.URL)
	}
	return fmt.Sprintf("%q is not an http:// or https:// URL", e.URL)
}

// HTTPError is an answer with an unexpected status.
type HTTPError struct {
	Op         string // "POST /build"
	StatusCode int
	Detail     string        // the server's "detail", or the start of its body
	RetryAfter time.Duration // from the Retry-After header; 0 when absent
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("%s: %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// RedirectError is a 3xx answer the client does not follow: any to an upload (the body would
// go elsewhere, or be dropped for a GET that answers with a build_id), and any that remains
// after the redirects of a GET were followed.
type RedirectError struct {
	Op         string
	StatusCode int
	Location   string // where the server pointed; empty when it named nothing
}

func (e *RedirectError) Error() string {
	where := e.Location
	if where == "" {
		where = "nowhere"
	}
	return fmt.Sprintf("%s: the server answered %d %s, redirecting to %s; not followed",
		e.Op, e.StatusCode, http.StatusText(e.StatusCode), where)
}

// ErrKeyEchoed is a build_id holding the API key: whatever answered is not a Runtime API to trust.
var ErrKeyEchoed = errors.New("POST /build: the server answered with the API key in the build_id")

// ErrKeyControlCharacter is a key holding a line break or another control character: no
// HTTP header can carry it, so every request would fail.
var ErrKeyControlCharacter = errors.New("the API key holds a control character (a line break?)")

// retryableStatus are the answers worth trying again: the server or a proxy may recover.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// permanent wraps errors that a retry cannot fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// isPermanent reports whether err is known not to heal by retrying.
func isPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// BuildFailedError is a build that ended badly on the server.
type BuildFailedError struct {
	BuildID string
	Status  BuildStatus
	Reason  string
	LogTail []string // the last lines of the build's log, when the server offers /build_logs
}

func (e *BuildFailedError) Error() string {
	reason := e.Reason
	if reason == "" {
		reason = "the server gave no reason"
	}
	return fmt.Sprintf("build %s ended %s: %s", e.BuildID, e.Status, reason)
}
