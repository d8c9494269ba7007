package pipeline

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/runtimebuild/runtimebuild/internal/buildctx"
	"github.com/runtimebuild/runtimebuild/internal/dockerfile"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/imageexport"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// patternSettings name the setting each list of selection patterns comes from.
var patternSettings = map[buildctx.PatternList]string{
	buildctx.IncludePatterns:      "INCLUDE",
	buildctx.AllowSecretsPatterns: "ALLOW_SECRETS",
}

// settingError turns the typed errors of the domain packages into what the user reads: a
// message naming the setting to change, and exit code 2 where the call was wrong. Other errors
// pass unchanged.
func settingError(err error) error {
	var pe *buildctx.PatternError
	var se *buildctx.SecretsError
	var mf *dockerfile.MissingFilesError
	var te *dockerfile.TemplateError
	var ue *runtimeapi.URLError
	var re *imageexport.ReferenceError
	var pf *imageexport.PlatformError
	var nl *imageexport.NotLocalError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe):
		name := patternSettings[pe.List]
		switch {
		case pe.List == buildctx.IgnorePatterns:
			file := pe.File
			if file == "" {
				file = ".dockerignore"
			}
			return exitcode.Usagef("%s: %w", file, pe.Err)
		case pe.Err == nil:
			return exitcode.Usagef("%s pattern %q matches no file of the selection", name, pe.Pattern)
		case pe.Pattern == "":
			return exitcode.Usagef("%s: %w", name, pe.Err)
		}
		return exitcode.Usagef("%s pattern %q: %w", name, pe.Pattern, pe.Err)
	case errors.As(err, &se):
		return exitcode.Usagef("%w; exclude them in .dockerignore, or allow them with ALLOW_SECRETS=%s", err, strings.Join(se.Files(), ","))
	case errors.As(err, &mf):
		return exitcode.Usagef("%w; add them, or set DOCKERFILE to a Dockerfile of the source", err)
	case errors.As(err, &te):
		return exitcode.AsUsage(err)
	case errors.As(err, &ue):
		switch ue.Reason {
		case runtimeapi.HasCredentials:
			return exitcode.Usagef("RUNTIME_API_URL must not carry credentials; the key goes in RUNTIME_API_KEY")
		case runtimeapi.InsecureHTTP:
			return exitcode.Usagef("RUNTIME_API_URL=%q is plain http to another host: the API key would cross the network unencrypted; use https, or set ALLOW_INSECURE_HTTP=true", ue.URL)
		}
		return exitcode.Usagef("RUNTIME_API_URL=%q is not an http:// or https:// URL", ue.URL)
	case errors.As(err, &re):
		return exitcode.AsUsage(err)
	case errors.As(err, &pf):
		return exitcode.Usagef("PLATFORM=%q: %w", pf.Platform, pf.Err)
	case errors.As(err, &nl):
		return fmt.Errorf("image %s is not in the local engine (PULL=false): pull it, or set PULL=true", nl.Ref) // the work failed, not the call
	}
	return err
}

// unmatchedAllowWarning is the warning for an ALLOW_SECRETS pattern that allows nothing.
func unmatchedAllowWarning(pattern string) string {
	return fmt.Sprintf("ALLOW_SECRETS pattern %q matches no packed file", pattern)
}

// Advise adds to an error of the Runtime API client the setting that fixes it; other errors
// pass unchanged. The client speaks of keys and URLs; only this edge knows their variables.
func Advise(err error) error {
	var he *runtimeapi.HTTPError
	var re *runtimeapi.RedirectError
	var ue *runtimeapi.UnreachableError
	var ie *runtimeapi.BuildIDError
	switch {
	case errors.As(err, &he) && (he.StatusCode == http.StatusUnauthorized || he.StatusCode == http.StatusForbidden):
		return fmt.Errorf("%w (check RUNTIME_API_KEY)", err)
	case errors.As(err, &he) && he.StatusCode == http.StatusRequestEntityTooLarge:
		return fmt.Errorf("%w (narrow the archive with .dockerignore or INCLUDE)", err)
	case errors.As(err, &re):
		return fmt.Errorf("%w: set RUNTIME_API_URL to the Runtime API itself", err)
	case errors.Is(err, runtimeapi.ErrKeyEchoed), errors.As(err, &ie):
		return fmt.Errorf("%w: check RUNTIME_API_URL points at the Runtime API", err)
	case errors.As(err, &ue) && ue.Proxy != "":
		return fmt.Errorf("%w: check the proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY)", err)
	case errors.As(err, &ue) && ue.Reason == runtimeapi.UnknownHost:
		return fmt.Errorf("%w: check the host name in RUNTIME_API_URL, and that this machine resolves it (DNS, /etc/hosts, a VPN)", err)
	case errors.As(err, &ue):
		return fmt.Errorf("%w: check RUNTIME_API_URL (its port), and that the Runtime API is running", err)
	}
	return err
}
