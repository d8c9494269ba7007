package pipeline

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/dockerfile"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/imageexport"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

func TestARefusedRuntimeAPIURLNamesTheSettingsAndIsAUsageError(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want string
	}{
		{"ftp://api.example.com", `RUNTIME_API_URL="ftp://api.example.com" is not an http:// or https:// URL`},
		{"https://user:secret@api.example.com", "RUNTIME_API_URL must not carry credentials; the key goes in RUNTIME_API_KEY"},
		{"http://api.example.com", `RUNTIME_API_URL="http://api.example.com" is plain http to another host: the API key would cross the network unencrypted; use https, or set ALLOW_INSECURE_HTTP=true`},
	} {
		_, err := NewClient(config.Config{RuntimeAPIURL: tt.url, RuntimeAPIKey: "k"}, progress.New(io.Discard, "quiet"))
		if exitcode.Of(err) != exitcode.Usage || err.Error() != tt.want {
			t.Errorf("%s: exit code %d, %q; want 2, %q", tt.url, exitcode.Of(err), err, tt.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the message shows the password: %q", tt.url, err)
		}
	}
	if _, err := NewClient(config.Config{RuntimeAPIURL: "http://api.example.com", RuntimeAPIKey: "k", AllowInsecureHTTP: true}, progress.New(io.Discard, "quiet")); err != nil {
		t.Errorf("with ALLOW_INSECURE_HTTP=true: %v", err)
	}
}

func TestDomainErrorsBecomeOneLineNamingTheSettingWithTheirExitCode(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		code int
		want string
	}{
		{"a bad image reference", &imageexport.ReferenceError{Ref: "UPPER::x", Err: errors.New("bad")}, 2, `"UPPER::x" is not a valid image reference: bad`},
		{"a bad PLATFORM", &imageexport.PlatformError{Platform: "linux/", Err: errors.New("bad")}, 2, `PLATFORM="linux/": bad`},
		{"an image the engine lacks with PULL=false", fmt.Errorf("exporting: %w", &imageexport.NotLocalError{Ref: "app:1"}), 1, "image app:1 is not in the local engine (PULL=false): pull it, or set PULL=true"},
		{"a template that fails", &dockerfile.TemplateError{Op: "rendering", Err: errors.New("no field")}, 2, "rendering the Dockerfile template: no field"},
		{"an ALLOW_SECRETS list that does not compile", &buildctx.PatternError{List: buildctx.AllowSecretsPatterns, Err: errors.New("bad")}, 2, "ALLOW_SECRETS: bad"},
		{"an ALLOW_SECRETS pattern that does not compile", &buildctx.PatternError{List: buildctx.AllowSecretsPatterns, Pattern: "[", Err: errors.New("bad")}, 2, `ALLOW_SECRETS pattern "[": bad`},
		{"an ignore file without a path", &buildctx.PatternError{List: buildctx.IgnorePatterns, Err: errors.New("bad")}, 2, ".dockerignore: bad"},
		{"anything else", errors.New("disk full"), 1, "disk full"},
	} {
		got := settingError(tt.err)
		if exitcode.Of(got) != tt.code || got.Error() != tt.want {
			t.Errorf("%s: exit code %d, %q; want %d, %q", tt.name, exitcode.Of(got), got, tt.code, tt.want)
		}
	}
	if settingError(nil) != nil {
		t.Error("settingError(nil) is not nil")
	}
}

func TestRuntimeAPIErrorsAreAdvisedWithTheSettingThatFixesThem(t *testing.T) {
	wrapped := func(err error) error { return fmt.Errorf("uploading ctx.tar.gz: %w", err) }
	for _, tt := range []struct {
		err  error
		want string
	}{
		{wrapped(&runtimeapi.HTTPError{Op: "POST /build", StatusCode: 401, Detail: "bad key"}), "uploading ctx.tar.gz: POST /build: 401 Unauthorized: bad key (check RUNTIME_API_KEY)"},
		{wrapped(&runtimeapi.HTTPError{Op: "GET /build_status", StatusCode: 403}), "uploading ctx.tar.gz: GET /build_status: 403 Forbidden (check RUNTIME_API_KEY)"},
		{wrapped(&runtimeapi.HTTPError{Op: "POST /build", StatusCode: 413, Detail: "max 1 GB"}), "uploading ctx.tar.gz: POST /build: 413 Request Entity Too Large: max 1 GB (narrow the archive with .dockerignore or INCLUDE)"},
		{wrapped(&runtimeapi.RedirectError{Op: "POST /build", StatusCode: 302, Location: "https://x/build"}), "uploading ctx.tar.gz: POST /build: the server answered 302 Found, redirecting to https://x/build; not followed: set RUNTIME_API_URL to the Runtime API itself"},
		{wrapped(runtimeapi.ErrKeyEchoed), "uploading ctx.tar.gz: POST /build: the server answered with the API key in the build_id: check RUNTIME_API_URL points at the Runtime API"},
		{wrapped(&runtimeapi.HTTPError{Op: "POST /build", StatusCode: 400, Detail: "no"}), "uploading ctx.tar.gz: POST /build: 400 Bad Request: no"},
		{&runtimeapi.UnreachableError{Op: "GET /registry_prefix", URL: "http://127.0.0.1:9", Host: "127.0.0.1", Reason: runtimeapi.ConnectionRefused, Err: errors.New("connection refused")},
			"GET /registry_prefix: nothing listens at http://127.0.0.1:9 (connection refused): check RUNTIME_API_URL (its port), and that the Runtime API is running"},
		{&runtimeapi.UnreachableError{Op: "GET /registry_prefix", URL: "https://rt.example", Host: "rt.example", Reason: runtimeapi.UnknownHost, Err: errors.New("no such host")},
			`GET /registry_prefix: the host name "rt.example" of https://rt.example does not resolve (no such host): check the host name in RUNTIME_API_URL, and that this machine resolves it (DNS, /etc/hosts, a VPN)`},
		{&runtimeapi.UnreachableError{Op: "GET /registry_prefix", URL: "https://rt.example", Proxy: "http://proxy:3128", Host: "proxy", Reason: runtimeapi.ConnectionRefused, Err: errors.New("connection refused")},
			"GET /registry_prefix: nothing listens at the proxy http://proxy:3128 (for https://rt.example) (connection refused): check the proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY)"},
		{wrapped(&runtimeapi.BuildIDError{ID: "x; y"}), `uploading ctx.tar.gz: the server answered the build_id "x; y", which is no build ID (1 to 256 letters, digits and ._:-): check RUNTIME_API_URL points at the Runtime API`},
		{&runtimeapi.RedirectError{Op: "GET /build_status", StatusCode: 302, Location: "http://other:1/build_status", OtherOrigin: true},
			"GET /build_status: the server answered 302 Found, redirecting to another origin, http://other:1/build_status; not followed: answers come only from the Runtime API's own scheme, host and port: set RUNTIME_API_URL to the Runtime API itself"},
	} {
		if got := Advise(tt.err); got.Error() != tt.want {
			t.Errorf("Advise:\n got %q\nwant %q", got, tt.want)
		}
	}
	if Advise(nil) != nil {
		t.Error("Advise(nil) is not nil")
	}
	code := exitcode.Usagef("x: %w", &runtimeapi.HTTPError{Op: "POST /build", StatusCode: 401})
	if exitcode.Of(Advise(code)) != exitcode.Usage {
		t.Error("Advise lost the exit code of the error it advised")
	}
}
