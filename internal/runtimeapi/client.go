// Package runtimeapi is a client of the Runtime API build protocol (docs/protocol.md): it streams
// archives to /build with retries and follows /build_status to a terminal status.
package runtimeapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

	"github.com/avast/retry-go/v4"

	"github.com/runtimebuild/runtimebuild/internal/progress"
)

// Logger receives the client's human lines; *progress.Log is one.
type Logger = progress.Logger

// Retry bounds the retries of one request.
type Retry struct {
	Attempts  uint          // tries in all, the first included
	BaseDelay time.Duration // first backoff, doubled each retry, with jitter
	MaxDelay  time.Duration // cap on any single wait, Retry-After included
}

// DefaultRetry is what production uses: 8 tries, 1 s growing to at most 60 s between them.
var DefaultRetry = Retry{Attempts: 8, BaseDelay: time.Second, MaxDelay: 60 * time.Second}

// Options tune a Client; the zero value takes the defaults.
type Options struct {
	AllowInsecureHTTP bool          // plain http:// to a host other than loopback
	Retry             Retry         // zero: DefaultRetry
	RequestTimeout    time.Duration // whole request for small calls; zero: 30 s
	HeaderTimeout     time.Duration // wait for the answer once an upload is sent; zero: 5 min
	Logger            Logger        // nil: silent
}

// Client talks to one Runtime API with one key.
type Client struct {
	base    *url.URL
	key     string
	http    *http.Client
	opts    Options
	redact  *strings.Replacer // the key out of every string the server sends back
	reached atomic.Bool       // the server has answered once: from then on, a refused connection may heal
}

// New returns a client for baseURL. The key travels only in the X-API-Key header. A base URL it
// refuses is a *URLError.
func New(baseURL, key string, opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, &URLError{URL: baseURL, Reason: NotHTTP}
	}
	shown := *u
	shown.User = nil // never in a message: it may be the key
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &URLError{URL: shown.String(), Reason: NotHTTP}
	}
	if u.User != nil {
		return nil, &URLError{URL: shown.String(), Reason: HasCredentials}
	}
	if strings.ContainsFunc(key, unicode.IsControl) {
		return nil, ErrKeyControlCharacter
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) && !opts.AllowInsecureHTTP {
		return nil, &URLError{URL: shown.String(), Reason: InsecureHTTP}
	}
	if opts.Retry.Attempts == 0 {
		opts.Retry = DefaultRetry
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	if opts.HeaderTimeout == 0 {
		opts.HeaderTimeout = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = progress.Discard
	}
	transport := http.DefaultTransport.(*http.Transport).Clone() // proxies and SSL_CERT_FILE as usual
	transport.ResponseHeaderTimeout = opts.HeaderTimeout
	hc := &http.Client{
		Transport: transport,
	}
	c := &Client{base: u, key: key, http: hc, opts: opts, redact: newRedactor(key)}
	hc.CheckRedirect = c.checkRedirect
	return c, nil
}

// checkRedirect follows a GET's redirects within the base URL's origin only: an answer from
// another scheme, host or port would become a result (an image, a SUCCESS) that the Runtime
// API never gave.
func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if m := via[0].Method; m != http.MethodGet && m != http.MethodHead {
		return http.ErrUseLastResponse // an upload is never redirected: attempt makes the 3xx an error
	}
	if !sameOrigin(req.URL, c.base) {
		code := 0
		if req.Response != nil {
			code = req.Response.StatusCode
		}
		return &RedirectError{StatusCode: code, Location: c.redact.Replace(req.URL.Redacted()), OtherOrigin: true}
	}
	if len(via) >= 5 {
		return errors.New("too many redirects")
	}
	return nil
}

// sameOrigin compares scheme, host and port, the port defaulted by the scheme.
func sameOrigin(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if strings.EqualFold(u.Scheme, "https") {
			return "443"
		}
		return "80"
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RegistryPrefix asks where the server pushes images.
func (c *Client) RegistryPrefix(ctx context.Context) (string, error) {
	var out RegistryPrefixAnswer
	if err := c.getJSON(ctx, PathRegistryPrefix, nil, &out); err != nil {
		return "", fmt.Errorf("asking the registry prefix: %w", err)
	}
	if out.RegistryPrefix == "" {
		return "", fmt.Errorf("asking the registry prefix: %w", ErrNoRegistryPrefix)
	}
	return c.redact.Replace(strings.TrimRight(out.RegistryPrefix, "/")), nil
}

// ImageExists asks whether image is already in the registry.
func (c *Client) ImageExists(ctx context.Context, image string) (bool, error) {
	var out ImageExistsAnswer
	if err := c.getJSON(ctx, PathImageExists, url.Values{"image": {image}}, &out); err != nil {
		return false, fmt.Errorf("asking whether %s exists: %w", image, err)
	}
	return out.Exists, nil
}

// BuildStatus asks once for the status of a build: one request, no retries (WaitForBuild's
// next poll is the retry).
func (c *Client) BuildStatus(ctx context.Context, buildID string) (Status, error) {
	var s Status
	err := c.attempt(ctx, "GET /build_status", func(ctx context.Context) (*http.Request, error) {
		return c.request(ctx, http.MethodGet, PathBuildStatus, url.Values{ParamBuildID: {buildID}}, nil)
	}, &s, c.opts.RequestTimeout)
	for _, f := range []*string{&s.BuildID, (*string)(&s.Status), &s.Image, &s.Digest, &s.Error, &s.Message} {
		*f = c.redact.Replace(*f)
	}
	if err == nil && s.BuildID != "" && s.BuildID != buildID { // the answer is about another build: none of it applies
		return Status{}, fmt.Errorf("GET %s: %w: asked for build %s, the answer names build %q", PathBuildStatus, ErrOtherBuild, buildID, s.BuildID)
	}
	return s, err
}

// BuildRequest is one archive to build.
type BuildRequest struct {
	Archive     string // path of the tar.gz, re-opened for every attempt
	Format      Format
	TargetImage string
	Tags        []string
	// Progress, when not nil, hears the bytes of the body sent so far and its length; a
	// retried upload starts again from 0.
	Progress func(sent, total int64)
}

// SubmitBuild streams the archive to /build and returns the build ID. Every attempt re-reads
// the file and carries the same Idempotency-Key, with an exact Content-Length.
func (c *Client) SubmitBuild(ctx context.Context, req BuildRequest) (string, error) {
	if req.Format == "" {
		req.Format = Multipart
	}
	key := make([]byte, 16)
	rand.Read(key)
	idempotencyKey := hex.EncodeToString(key)
	var out BuildAnswer
	err := c.do(ctx, "POST /build", func(ctx context.Context) (*http.Request, error) {
		b, contentType, err := newBody(req.Archive, req.Format, req.TargetImage, req.Tags)
		if err != nil {
			return nil, permanent{fmt.Errorf("opening the archive: %w", err)}
		}
		if req.Progress != nil {
			b.Reader = &progressReader{r: b.Reader, total: b.length, report: req.Progress}
			req.Progress(0, b.length)
		}
		r, err := c.request(ctx, http.MethodPost, PathBuild, nil, b)
		if err != nil {
			b.Close()
			return nil, err
		}
		r.ContentLength = b.length
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("Idempotency-Key", idempotencyKey)
		return r, nil
	}, &out, 0)
	if err != nil {
		return "", err
	}
	if out.BuildID == "" {
		return "", errors.New("POST /build: the server accepted the upload but returned no build_id")
	}
	if id := c.redact.Replace(out.BuildID); id != out.BuildID {
		return "", ErrKeyEchoed
	}
	if !ValidBuildID(out.BuildID) {
		return "", fmt.Errorf("POST /build: %w", &BuildIDError{ID: out.BuildID})
	}
	return out.BuildID, nil
}

var buildIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,256}$`)

// ValidBuildID reports whether id is a build ID the client passes on: 1 to MaxBuildIDLength
// letters, digits and "._:-". Such an ID means nothing to a shell, a terminal or a workflow's
// outputs, wherever it is printed or written.
func ValidBuildID(id string) bool { return buildIDPattern.MatchString(id) }

// Cancel asks the server to cancel a build (POST /build/cancel?build_id=, serve's own endpoint).
// The answer is CANCELLED, or the terminal status the build had already reached. A server
// without the endpoint is a *CancelUnsupportedError; a build it does not know, an *HTTPError 404.
func (c *Client) Cancel(ctx context.Context, buildID string) (CancelAnswer, error) {
	var out CancelAnswer
	err := c.do(ctx, "POST "+PathBuildCancel, func(ctx context.Context) (*http.Request, error) {
		return c.request(ctx, http.MethodPost, PathBuildCancel, url.Values{ParamBuildID: {buildID}}, nil)
	}, &out, c.opts.RequestTimeout)
	var herr *HTTPError
	if errors.As(err, &herr) && noEndpoint(herr) {
		shown := *c.base
		return CancelAnswer{}, &CancelUnsupportedError{URL: shown.String(), StatusCode: herr.StatusCode}
	}
	if err != nil {
		return CancelAnswer{}, err
	}
	out.BuildID, out.Status = c.redact.Replace(out.BuildID), ParseBuildStatus(c.redact.Replace(string(out.Status)))
	switch {
	case out.BuildID != "" && out.BuildID != buildID:
		return CancelAnswer{}, fmt.Errorf("POST %s: asked to cancel build %s, the server answered for build %q", PathBuildCancel, buildID, out.BuildID)
	case !out.Status.Known():
		return CancelAnswer{}, fmt.Errorf("POST %s: the server answered the status %q, which is none of the protocol's", PathBuildCancel, out.Status)
	}
	out.BuildID = buildID
	return out, nil
}

// noEndpoint tells a server without the path from one that answers for a build: 405 is always
// the former; a 404 is too when it names nothing (a router's plain "404 page not found") or says
// only FastAPI's "Not Found", while serve's 404 for an unknown build carries a JSON detail
// naming it.
func noEndpoint(e *HTTPError) bool {
	switch e.StatusCode {
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return true
	case http.StatusNotFound:
		return !e.JSONDetail || strings.EqualFold(strings.TrimSpace(e.Detail), "Not Found")
	}
	return false
}

func (c *Client) request(ctx context.Context, method, path string, query url.Values, body io.ReadCloser) (*http.Request, error) {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = query.Encode()
	var r *http.Request
	var err error
	if body == nil {
		r, err = http.NewRequestWithContext(ctx, method, u.String(), nil)
	} else {
		r, err = http.NewRequestWithContext(ctx, method, u.String(), body)
	}
	if err != nil {
		return nil, err
	}
	r.Header.Set("X-API-Key", c.key)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "runtimebuild")
	return r, nil
}

func (c *Client) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	return c.do(ctx, "GET "+path, func(ctx context.Context) (*http.Request, error) {
		return c.request(ctx, http.MethodGet, path, query, nil)
	}, out, c.opts.RequestTimeout)
}

// do sends the request made by newRequest, retrying what may heal, and decodes a 2xx answer
// into out. timeout bounds each attempt when not zero.
func (c *Client) do(ctx context.Context, op string, newRequest func(context.Context) (*http.Request, error), out any, timeout time.Duration) error {
	r := c.opts.Retry
	var last error // the latest attempt's own failure: why, when the deadline or Ctrl-C ends the retries
	err := retry.Do(func() error {
		err := c.attempt(ctx, op, newRequest, out, timeout)
		if err != nil && ctx.Err() == nil {
			last = err
		}
		return err
	},
		retry.Context(ctx),
		retry.Attempts(r.Attempts),
		retry.Delay(r.BaseDelay),
		retry.MaxDelay(r.MaxDelay),
		retry.LastErrorOnly(true),
		retry.RetryIf(func(err error) bool { return !isPermanent(err) }),
		retry.DelayType(func(n uint, err error, cfg *retry.Config) time.Duration {
			var herr *HTTPError
			if errors.As(err, &herr) && herr.RetryAfter > 0 {
				return herr.RetryAfter
			}
			return retry.CombineDelay(retry.BackOffDelay, retry.RandomDelay)(n, err, cfg)
		}),
		retry.MaxJitter(r.BaseDelay),
		retry.OnRetry(func(n uint, err error) {
			if n+1 < r.Attempts {
				c.opts.Logger.Warnf("%v; retrying (%d of %d)", err, n+2, r.Attempts)
			}
		}),
	)
	if err != nil && ctx.Err() != nil && last != nil {
		return fmt.Errorf("%v (gave up: %w)", last, ctx.Err())
	}
	return err
}

// attempt sends one request and decodes a 2xx answer into out; errors that a retry cannot
// heal are permanent.
func (c *Client) attempt(ctx context.Context, op string, newRequest func(context.Context) (*http.Request, error), out any, timeout time.Duration) error {
	actx, cancel := ctx, context.CancelFunc(func() {})
	if timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()
	req, err := newRequest(actx)
	if err != nil {
		return err
	}
	resp, err := c.send(req, op)
	if err != nil {
		if ctx.Err() != nil {
			return permanent{ctx.Err()}
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return permanent{&RedirectError{Op: op, StatusCode: resp.StatusCode, Location: c.redact.Replace(resp.Header.Get("Location"))}}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		text, fromJSON := detail(resp.Body)
		if ctx.Err() != nil { // the detail was cut short by Ctrl-C: the answer is no longer the point
			return permanent{ctx.Err()}
		}
		herr := &HTTPError{Op: op, StatusCode: resp.StatusCode, Detail: c.redact.Replace(text), JSONDetail: fromJSON,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
		if !retryableStatus(resp.StatusCode) {
			return permanent{herr}
		}
		return herr
	}
	body := &readErrRecorder{r: resp.Body}
	if err := json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(out); err != nil {
		switch {
		case ctx.Err() != nil: // Ctrl-C or the caller's deadline while the answer arrived: theirs, not the server's
			return permanent{ctx.Err()}
		case body.err != nil: // the answer broke off or stalled: a dropped connection or a timeout, which may heal
			return fmt.Errorf("%s: reading the answer: %w", op, c.redactErr(scrub(body.err)))
		}
		return permanent{fmt.Errorf("%s: the answer is not the expected JSON: %v", op, err)}
	}
	return nil
}

// readErrRecorder keeps the first failure of reading r other than its end, so that an answer
// cut short by the connection (unexpected EOF, reset, timeout) is told from a whole answer
// that is not JSON: the decoder reports both as a decoding error.
type readErrRecorder struct {
	r   io.Reader
	err error
}

func (e *readErrRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// send does one round trip. A redirect to another origin is a permanent *RedirectError; a first
// contact that finds no server (refused, unknown host) a permanent *UnreachableError; other
// failures may heal.
func (c *Client) send(req *http.Request, op string) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err == nil {
		c.reached.Store(true)
		return resp, nil
	}
	var rerr *RedirectError
	if errors.As(err, &rerr) {
		rerr.Op = op
		return nil, permanent{rerr}
	}
	if !c.reached.Load() {
		if reason := unreachable(err); reason != 0 {
			ue := &UnreachableError{Op: op, URL: c.base.String(), Host: c.base.Hostname(), Reason: reason, Err: c.redactErr(innermost(err))}
			if proxy := c.proxyFor(req); proxy != nil { // what was not found is the proxy, not the API
				ue.Proxy, ue.Host = proxy.Redacted(), proxy.Hostname()
			}
			return nil, permanent{ue}
		}
	}
	return nil, fmt.Errorf("%s: %w", op, c.redactErr(scrub(err))) // a malformed answer is quoted in the error
}

// proxyFor is the proxy req goes through (from the environment, as usual), or nil.
func (c *Client) proxyFor(req *http.Request) *url.URL {
	t, ok := c.http.Transport.(*http.Transport)
	if !ok || t.Proxy == nil {
		return nil
	}
	p, err := t.Proxy(req)
	if err != nil {
		return nil
	}
	return p
}

// wsaeConnRefused is Windows' "connection refused", which is not syscall.ECONNREFUSED there.
const wsaeConnRefused = syscall.Errno(10061)

// unreachable classifies a transport error that says no server is at the URL: a refused
// connection or a host name that does not exist. A timeout, a reset or a DNS server that does not
// answer may heal, and is not one.
func unreachable(err error) UnreachableReason {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return UnknownHost
	case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, wsaeConnRefused):
		return ConnectionRefused
	}
	return 0
}

// innermost is the cause the message shows: "connection refused", "no such host", without the
// op and addresses the layers above add.
func innermost(err error) error {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return errors.New(dns.Err)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return scrub(err)
}

// detail extracts the server's {"detail": ...} or the start of a non-JSON body; fromJSON says
// which.
func detail(r io.Reader) (text string, fromJSON bool) {
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	var d ErrorAnswer
	if json.Unmarshal(b, &d) == nil && d.Detail != "" {
		return d.Detail, true
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s, false
}

// minRedactedKey is the shortest key redacted: a key of a few characters would be cut out of
// ordinary words ("Doc[REDACTED]erfile"), and a key that short protects nothing anyway.
const minRedactedKey = 8

// newRedactor replaces the key, as it is and as a URL would carry it, with "[REDACTED]".
func newRedactor(key string) *strings.Replacer {
	if len(key) < minRedactedKey {
		return strings.NewReplacer()
	}
	pairs := []string{key, "[REDACTED]"}
	if q := url.QueryEscape(key); q != key {
		pairs = append(pairs, q, "[REDACTED]")
	}
	return strings.NewReplacer(pairs...)
}

// redactErr keeps err's chain but not the key in its text.
func (c *Client) redactErr(err error) error {
	if msg := err.Error(); c.redact.Replace(msg) != msg {
		return &redactedError{msg: c.redact.Replace(msg), err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// scrub drops the URL from transport errors: it is already in the message's op, and a query
// could carry what should not be printed.
func scrub(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}
