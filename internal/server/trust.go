package server

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
)

// Trust is serve's trust boundary (docs/serve-security.md): a key holder names images under
// Prefix alone; its bases come from registries and its sources never reach serve's own
// networks, unless the operator opted in.
type Trust struct {
	Prefix string // SERVE_REGISTRY_PREFIX: "registry/path", or a registry alone
	// LocalImages lets FROM, --from and mount sources use images only the engine holds
	// (SERVE_LOCAL_IMAGES: a single-user machine).
	LocalImages bool
	// PrivateURLs lets ADD and git sources reach loopback, link-local and private addresses
	// (SERVE_ALLOW_PRIVATE_URLS).
	PrivateURLs bool
	// LocalImagesName and PrivateURLsName are the opt-ins as the refusals they lift name them
	// to the operator (the edge's wording: "SERVE_LOCAL_IMAGES=true"); empty: not named.
	LocalImagesName, PrivateURLsName string
}

// optIn is the refusal's last words: the operator's opt-in that lifts it, when it has a name.
func optIn(name string) string {
	if name == "" {
		return ""
	}
	return " (the operator's " + name + " allows it)"
}

// OutsidePrefixError is an image name outside the registry prefix.
type OutsidePrefixError struct {
	What, Ref, Prefix string // What: "target_image", "the tag", "image"
}

func (e *OutsidePrefixError) Error() string {
	return fmt.Sprintf("%s %s is not under the registry prefix %s: this server builds and names images only there", e.What, quoteName(e.Ref), e.Prefix)
}

// Registry is the prefix's registry ("localhost", "127.0.0.1:5000", "index.docker.io").
func (t Trust) Registry() string {
	if reg, _, ok := t.split(); ok {
		return reg
	}
	return ""
}

// split parses the prefix into its registry and repository path ("" for a registry alone).
func (t Trust) split() (registry, path string, ok bool) {
	p := strings.TrimSuffix(t.Prefix, "/")
	if !strings.Contains(p, "/") {
		reg, err := name.NewRegistry(p)
		if err != nil {
			return "", "", false
		}
		return reg.RegistryStr(), "", true
	}
	// A repository below the prefix, parsed as the engine does ("docker.io/team" is Docker Hub's
	// team/…, not library/team): the prefix is its path without the last element.
	repo, err := name.NewRepository(p + "/x")
	if err != nil {
		return "", "", false
	}
	return repo.RegistryStr(), strings.TrimSuffix(repo.RepositoryStr(), "/x"), true
}

// Under reports whether ref names an image in a repository below the prefix (prefix
// localhost/runtime: localhost/runtime/app:1 is, localhost/runtime-x/app and
// docker.io/runtime/app are not). Only a canonical name is ever under it: every path component
// as the distribution grammar writes them (no "..", ".", empty or upper-case component), the
// repository's components compared with the prefix's, one by one.
func (t Trust) Under(ref string) bool {
	if canonical(ref) != nil {
		return false
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return false
	}
	reg, path, ok := t.split()
	if !ok || r.Context().RegistryStr() != reg {
		return false
	}
	if path == "" {
		return true
	}
	want, got := strings.Split(path, "/"), strings.Split(r.Context().RepositoryStr(), "/")
	if len(got) <= len(want) {
		return false
	}
	for i := range want {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// canonical refuses a name the distribution reference grammar does not write: a registry
// normalises "a/../b" or "a//b" into another repository (and redirects to it), so such a name
// is never compared, asked or pushed.
func canonical(ref string) error {
	_, err := reference.ParseNormalizedNamed(ref)
	return err
}

// check refuses ref, named by a client as what, when it is not a canonical image reference under
// the prefix.
func (t Trust) check(what, ref string) error {
	if err := canonical(ref); err != nil {
		return badRequest{fmt.Sprintf("%s %s is not an image reference (in canonical form): %v", what, quoteName(ref), err)}
	}
	if _, err := name.ParseReference(ref); err != nil {
		return badRequest{fmt.Sprintf("%s %s is not an image reference: %v", what, quoteName(ref), err)}
	}
	if t.Under(ref) {
		return nil
	}
	return badRequest{(&OutsidePrefixError{What: what, Ref: ref, Prefix: t.Prefix}).Error()}
}

// checkName is check for a name the build gives an image (target_image, a tag): a digest
// names content, never something a push can make, so it is refused.
func (t Trust) checkName(what, ref string) error {
	if err := t.check(what, ref); err != nil {
		return err
	}
	if strings.Contains(ref, "@") {
		return badRequest{fmt.Sprintf("%s %s is a digest, which cannot be given to an image: send a name with a tag", what, quoteName(ref))}
	}
	return nil
}

// optIn is the opt-in that lifts the refusal, when it has a name.
func (e *BaseImageError) optIn() string {
	if e.OptIn == "" {
		return ""
	}
	return "; the operator's " + e.OptIn + " lets the engine's own images serve"
}
