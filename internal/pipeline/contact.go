package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/runtimebuild/runtimebuild/internal/config"
	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/invocation"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/result"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// Reach makes the first contact with the Runtime API before anything slow (packing, exporting)
// runs, so that a wrong RUNTIME_API_URL or key fails in seconds instead of after the work: it
// asks /registry_prefix, which the default target image needs anyway. With TARGET_IMAGE set the
// prefix is not needed, so a server that answers without one (a 4xx, no registry_prefix) is
// reached all the same; no server at the URL, a redirect elsewhere, a wrong key or a body that
// is not the API's JSON still stop the run, and so does, without TARGET_IMAGE, a prefix that no
// image name can follow.
func Reach(ctx context.Context, client *runtimeapi.Client, api config.API, targetImage string) error {
	return reach(ctx, client, api, targetImage == "")
}

// reach is Reach for a run that needs the registry prefix or not (image names its target itself).
func reach(ctx context.Context, client *runtimeapi.Client, api config.API, needsPrefix bool) error {
	ctx, cancel := context.WithTimeout(ctx, api.BuildTimeout) // a first contact, before the build's own deadline starts
	defer cancel()
	_, err := registryPrefix(ctx, client)
	var he *runtimeapi.HTTPError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		return &InterruptedError{While: "contacting the Runtime API", Advice: "nothing was written"}
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the Runtime API did not answer within BUILD_TIMEOUT=%s: %w", api.BuildTimeout, err)
	case needsPrefix:
		return err
	case errors.Is(err, runtimeapi.ErrNoRegistryPrefix), errors.As(err, new(*registryPrefixError)):
		return nil // TARGET_IMAGE names the image: the prefix, missing or unusable, is not needed
	case errors.As(err, &he) && he.StatusCode >= 400 && he.StatusCode < 500 &&
		he.StatusCode != http.StatusUnauthorized && he.StatusCode != http.StatusForbidden &&
		he.StatusCode != http.StatusRequestTimeout && he.StatusCode != http.StatusTooManyRequests:
		return nil // it answered, and TARGET_IMAGE needs no prefix
	}
	return err
}

// registryPrefix asks the Runtime API where it pushes images. A wrong key, no server at the URL
// or a redirect elsewhere pass unchanged for Advise to name what to check; a prefix no image
// name can follow is a *registryPrefixError.
func registryPrefix(ctx context.Context, client *runtimeapi.Client) (string, error) {
	prefix, err := client.RegistryPrefix(ctx)
	var he *runtimeapi.HTTPError
	var ue *runtimeapi.UnreachableError
	var re *runtimeapi.RedirectError
	switch {
	case err == nil:
		// Any IMAGE_NAME config accepts is a valid path component: checking with one checks the prefix.
		if _, err := name.NewRepository(strings.TrimRight(prefix, "/") + "/image"); err != nil {
			return "", &registryPrefixError{Prefix: prefix}
		}
		return prefix, nil
	case errors.As(err, &he) && (he.StatusCode == http.StatusUnauthorized || he.StatusCode == http.StatusForbidden),
		errors.As(err, &ue), errors.As(err, &re), errors.Is(err, runtimeapi.ErrKeyEchoed):
		return "", err // the key or the URL itself is wrong: Advise says which
	}
	return "", fmt.Errorf("%w; check RUNTIME_API_URL, or name the image yourself with TARGET_IMAGE", err)
}

// registryPrefixError is a registry prefix that no image name can follow (a line break, a
// workflow command, characters no registry path has): it is refused before anything is packed.
type registryPrefixError struct {
	Prefix string // as the server sent it, the key redacted
}

func (e *registryPrefixError) Error() string {
	return fmt.Sprintf("GET /registry_prefix answered %q, which is no registry and path an image name can follow; "+
		"check RUNTIME_API_URL, or name the image yourself with TARGET_IMAGE", e.Prefix)
}

// interruptedAfterPacking says what a Ctrl-C after packing leaves: the archive and its result
// file, which a later upload sends. Other errors pass unchanged.
func interruptedAfterPacking(err error, archive, while string) error {
	var ie *InterruptedError
	if err == nil || !errors.Is(err, context.Canceled) || errors.As(err, &ie) {
		return err
	}
	return &InterruptedError{While: while, Advice: writtenAdvice(archive, "nothing was sent; run it again to upload")}
}

// writtenAdvice is the advice of an interruption that leaves archive and its result file on disk.
func writtenAdvice(archive, rest string) string {
	return fmt.Sprintf("%s and %s were written, %s", archive, result.PathFor(archive), rest)
}

// BuildIDArgument checks the build ID a user gave to target ("status", "cancel"): the one
// upload printed, letters, digits and ._:- only.
func BuildIDArgument(target, id string) error {
	switch {
	case strings.TrimSpace(id) == "":
		return exitcode.Usagef("%s needs a build ID: %s <build_id>", target, invocation.Resume(target))
	case !runtimeapi.ValidBuildID(id):
		shown := id
		if len(shown) > 80 {
			shown = shown[:80] + "…"
		}
		return exitcode.Usagef("%s: %q is no build ID: upload prints one of 1 to %d letters, digits and ._:-", target, shown, runtimeapi.MaxBuildIDLength)
	}
	return nil
}

// Cancel asks the Runtime API to cancel build id (checked with BuildIDArgument), and reports
// what became of it: CANCELLED, or the status it had already ended with. A server without the
// cancel endpoint is an error.
func Cancel(ctx context.Context, client *runtimeapi.Client, log *progress.Log, id string) (runtimeapi.BuildStatus, error) {
	answer, err := client.Cancel(ctx, id)
	var he *runtimeapi.HTTPError
	switch {
	case errors.Is(err, context.Canceled):
		return "", &InterruptedError{While: "cancelling build " + id, Advice: "whether the server got the request is unknown: " +
			invocation.Resume("status", id) + " tells what became of the build"}
	case errors.As(err, &he) && he.StatusCode == http.StatusNotFound:
		return "", fmt.Errorf("%w: the Runtime API does not know build %s (a wrong ID, or one it has forgotten)", err, id)
	case err != nil:
		return "", err
	}
	switch {
	case answer.Status == runtimeapi.Cancelled:
		log.Infof("build %s cancelled", id)
	case answer.Status.Terminal():
		log.Infof("build %s had already ended %s: nothing to cancel", id, answer.Status)
	default: // the server took the request and stops the build in its own time
		log.Infof("build %s: cancelling asked, and it is still %s; %s follows it", id, answer.Status, invocation.Resume("status", id))
	}
	return answer.Status, nil
}
