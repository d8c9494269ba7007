package buildkit

import (
	"regexp"
	"strings"

	"github.com/moby/buildkit/client"
)

// CacheMode is how much of a build goes to the registry cache.
type CacheMode string

// The cache modes: BuildKit's max (every stage's steps) and min (the result's), or none.
const (
	CacheMax CacheMode = "max"
	CacheMin CacheMode = "min"
	CacheOff CacheMode = "off"
)

// mainBranch is the branch whose cache a build of another branch starts from, as the
// upstream workflow falls back to its main branch's.
const mainBranch = "main"

// RegistryCache is where a build's cache lives in the registry, named as the upstream build
// names its caches: the target repository's tag buildcache-{stage}-{branch}. A build imports
// its branch's cache, then main's; it exports to its branch's. stage is the stage built (empty:
// "default", the Dockerfile's last); branch comes from the client's tags (Branch); without one
// the cache is buildcache-{stage}, still with main's as a fallback. CacheOff gives none.
func RegistryCache(repo, stage, branch string, mode CacheMode) (imports, exports []client.CacheOptionsEntry) {
	if mode == CacheOff {
		return nil, nil
	}
	own := repo + ":" + cacheTag(stage, branch)
	imports = []client.CacheOptionsEntry{registryEntry(own)}
	if branch != mainBranch {
		imports = append(imports, registryEntry(repo+":"+cacheTag(stage, mainBranch)))
	}
	export := registryEntry(own)
	export.Attrs["mode"] = string(mode)
	// An OCI index (not the Docker manifest list type, which may hold only images) that any
	// distribution registry stores.
	export.Attrs["oci-mediatypes"] = "true"
	return imports, []client.CacheOptionsEntry{export}
}

func registryEntry(ref string) client.CacheOptionsEntry {
	return client.CacheOptionsEntry{Type: "registry", Attrs: map[string]string{"ref": ref}}
}

// cacheTag is buildcache-{stage}[-{branch}], lower case, within the 128 characters of a tag.
func cacheTag(stage, branch string) string {
	if stage == "" {
		stage = "default"
	}
	tag := "buildcache-" + slug(stage)
	if b := slug(branch); b != "" {
		tag += "-" + b
	}
	return strings.TrimRight(tag[:min(len(tag), 128)], ".-")
}

var notTagChar = regexp.MustCompile(`[^a-z0-9._-]+`)

func slug(s string) string {
	return strings.Trim(notTagChar.ReplaceAllString(strings.ToLower(s), "-"), ".-")
}

var fullSHATag = regexp.MustCompile(`^[0-9a-f]{40}-(.+)$`)

// Branch finds the branch in the tags the client sent (full references or bare tags). The
// client tags an image {sha40}-{tag} and, on a branch, {branch}-{tag} with the same {tag}: the
// branch is what another tag puts before that ending, other than the commit's short forms.
// Serve knows no more than that: no branch tag (a detached HEAD, a release tag, another client)
// means no branch.
func Branch(tags []string) (string, bool) {
	bare := make([]string, 0, len(tags))
	for _, t := range tags {
		if i := strings.LastIndexAny(t, ":/"); i >= 0 && t[i] == ':' {
			t = t[i+1:]
		}
		bare = append(bare, t)
	}
	for _, t := range bare {
		m := fullSHATag.FindStringSubmatch(t)
		if m == nil {
			continue
		}
		sha, rest := t[:40], "-"+m[1]
		for _, o := range bare {
			prefix, ok := strings.CutSuffix(o, rest)
			if !ok || prefix == "" || strings.HasPrefix(sha, prefix) {
				continue // the commit's own tags: {sha40}-, {sha7}-
			}
			return prefix, true
		}
	}
	return "", false
}
