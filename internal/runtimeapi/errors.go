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
	JSONDetail bool          // Detail came from a JSON {"detail": ...} body, the Runtime API's own form
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
// go elsewhere, or be dropped for a GET that answers with a build_id), any to another origin
// (scheme, host or port: an answer from there would be taken for the Runtime API's), and any
// that remains after the redirects of a GET were followed.
type RedirectError struct {
	Op          string
	StatusCode  int
	Location    string // where the server pointed; empty when it named nothing
	OtherOrigin bool   // Location is on another scheme, host or port than the base URL
}

func (e *RedirectError) Error() string {
	where := e.Location
	if where == "" {
		where = "nowhere"
	}
	if e.OtherOrigin {
		return fmt.Sprintf("%s: the server answered %d %s, redirecting to another origin, %s; not followed: answers come only from the Runtime API's own scheme, host and port",
			e.Op, e.StatusCode, http.StatusText(e.StatusCode), where)
	}
	return fmt.Sprintf("%s: the server answered %d %s, redirecting to %s; not followed",
		e.Op, e.StatusCode, http.StatusText(e.StatusCode), where)
}

// UnreachableReason is why a first contact found no server.
type UnreachableReason int

// The failures of a first contact that waiting does not heal.
const (
	ConnectionRefused UnreachableReason = iota + 1 // the host is there, nothing listens on the port
	UnknownHost                                    // the host name does not resolve
)

// UnreachableError is a first contact with the base URL that found no server: a refused
// connection or a host name that does not resolve. It is not retried: waiting does not make a
// wrong URL right. Once the server has answered, the same failures are retried (it may be
// restarting).
type UnreachableError struct {
	Op     string // "GET /registry_prefix"
	URL    string // the base URL, without user information
	Proxy  string // the proxy the request went through, password hidden; "" when none
	Host   string // the host name or address that was not found: the proxy's when there is one
	Reason UnreachableReason
	Err    error
}

func (e *UnreachableError) Error() string {
	switch {
	case e.Proxy != "" && e.Reason == UnknownHost:
		return fmt.Sprintf("%s: the host name %q of the proxy %s (for %s) does not resolve (%v)", e.Op, e.Host, e.Proxy, e.URL, e.Err)
	case e.Proxy != "":
		return fmt.Sprintf("%s: nothing listens at the proxy %s (for %s) (%v)", e.Op, e.Proxy, e.URL, e.Err)
	case e.Reason == UnknownHost:
		return fmt.Sprintf("%s: the host name %q of %s does not resolve (%v)", e.Op, e.Host, e.URL, e.Err)
	}
	return fmt.Sprintf("%s: nothing listens at %s (%v)", e.Op, e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// MaxBuildIDLength bounds a build ID: a longer one is no ID any Runtime API hands out.
const MaxBuildIDLength = 256

// BuildIDError is a build ID outside the letters, digits and "._:-" the client accepts: it would
// reach a shell through a resume hint or a workflow's outputs.
type BuildIDError struct {
	ID string // as the server sent it, the key redacted
}

func (e *BuildIDError) Error() string {
	id := e.ID
	const shown = 64
	if len(id) > shown {
		return fmt.Sprintf("the server answered a build_id of %d bytes beginning %q, which is no build ID (1 to %d letters, digits and ._:-)",
			len(id), id[:shown], MaxBuildIDLength)
	}
	return fmt.Sprintf("the server answered the build_id %q, which is no build ID (1 to %d letters, digits and ._:-)", id, MaxBuildIDLength)
}

// CancelUnsupportedError is a Runtime API that offers no cancel endpoint (404 or 405 without a
// build named, or a 404 that is a framework's "Not Found").
type CancelUnsupportedError struct {
	URL        string
	StatusCode int
}

func (e *CancelUnsupportedError) Error() string {
	return fmt.Sprintf("the Runtime API at %s offers no cancel endpoint (POST %s answered %d %s)",
		e.URL, PathBuildCancel, e.StatusCode, http.StatusText(e.StatusCode))
}

// ErrNoRegistryPrefix is a 2xx answer of /registry_prefix that names none.
var ErrNoRegistryPrefix = errors.New("GET /registry_prefix answered without registry_prefix")

// ErrOtherBuild is an answer of /build_status about another build than the one asked for.
var ErrOtherBuild = errors.New("the server answered for another build")

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
	if e.Status == Cancelled {
		return fmt.Sprintf("build %s was cancelled: %s", e.BuildID, reason)
	}
	return fmt.Sprintf("build %s ended %s: %s", e.BuildID, e.Status, reason)
}
