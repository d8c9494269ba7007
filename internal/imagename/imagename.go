// Package imagename names the images of a build the way the agent server's own build does:
// the target image and its extra tags, per target, each checked with go-containerregistry.
package imagename

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// DefaultTarget is the target whose names carry no target suffix (what the original script sends).
const DefaultTarget = "binary"

// Input is what the names are made of.
type Input struct {
	SHA       string   // the full commit SHA ("unknown" outside git)
	Target    string   // the stage built
	Tags      []string // CUSTOM_TAGS; the first is the primary tag
	Ref       string   // the git ref: refs/heads/x, refs/tags/vX.Y.Z, a bare branch name, or "" / "unknown"
	BaseImage string   // the effective base image; "" when unknown
}

// TagError says that a tag made from the input is not a valid tag.
type TagError struct {
	Tag    string
	Reason string
}

// Error names the tag and what is wrong with it.
func (e *TagError) Error() string { return fmt.Sprintf("tag %q %s", e.Tag, e.Reason) }

// Suffix is "-{target}", or "" for the default target.
func Suffix(target string) string {
	if target == "" || target == DefaultTarget {
		return ""
	}
	return "-" + target
}

// shortSHA is the first seven characters of sha.
func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// Primary is the target image's tag: {sha7}-{primary tag}[-{target}].
func Primary(in Input) string { return shortSHA(in.SHA) + "-" + in.Tags[0] + Suffix(in.Target) }

// Tags returns every tag of the image, the primary one first, without duplicates, in the
// order of the project's build.py: for each CUSTOM_TAGS entry {sha7}-{tag}, {sha40}-{tag} and
// {branch}-{tag}; then {sha7}-{base slug}; on a tag ref the release tags of each entry
// (releaseTags); each with the target suffix. A tag that is not valid by the registry grammar
// is a *TagError.
func Tags(in Input) ([]string, error) {
	suffix := Suffix(in.Target)
	var out []string
	seen := map[string]bool{}
	add := func(tag string) {
		if !seen[tag] {
			seen[tag] = true
			out = append(out, tag)
		}
	}
	short := shortSHA(in.SHA)
	add(Primary(in))
	branch, hasBranch := branchSlug(in.Ref)
	for _, t := range in.Tags {
		add(short + "-" + t + suffix)
		add(in.SHA + "-" + t + suffix)
		if hasBranch {
			rest := "-" + t + suffix
			add(strings.TrimRight(truncate(branch, maxTag-len(rest)), ".-") + rest)
		}
	}
	if tag, ok := BaseTag(in); ok {
		add(tag)
	}
	releases := releaseTags(in.Ref)
	for _, t := range in.Tags {
		for _, r := range releases {
			add(r + "-" + t + suffix)
		}
	}
	for _, t := range out {
		if err := checkTag(t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// BaseTag is the tag that says which base the image was built on: {sha7}-{base slug}[-{target}];
// false when the base image is not known.
func BaseTag(in Input) (string, bool) {
	if in.BaseImage == "" {
		return "", false
	}
	return shortSHA(in.SHA) + "-" + baseSlug(in.BaseImage) + Suffix(in.Target), true
}

const maxTag = 128

var tagGrammar = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// checkTag checks tag against the registry grammar, with go-containerregistry's name package.
func checkTag(tag string) error {
	if !tagGrammar.MatchString(tag) {
		if len(tag) > maxTag {
			return &TagError{tag, fmt.Sprintf("is %d characters long; a tag has at most %d", len(tag), maxTag)}
		}
		return &TagError{tag, "is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"}
	}
	if _, err := name.NewTag("example.test/check:"+tag, name.StrictValidation); err != nil {
		return &TagError{tag, "is not a valid tag: " + err.Error()}
	}
	return nil
}

var nonSlug = regexp.MustCompile(`[^a-zA-Z0-9.-]+`)

// branchSlug is the branch of ref as a tag (refs/heads/ stripped, each run of characters
// outside [a-zA-Z0-9.-] made one "-", lower-cased); false for no branch: an empty or unknown
// ref, a detached HEAD, a tag or any other refs/ ref.
func branchSlug(ref string) (string, bool) {
	if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		ref = b
	} else if strings.HasPrefix(ref, "refs/") || ref == "" || ref == "unknown" || ref == "HEAD" {
		return "", false
	}
	slug := strings.Trim(strings.ToLower(nonSlug.ReplaceAllString(ref, "-")), ".-")
	return slug, slug != ""
}

var (
	semver   = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
	nonRefOK = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)
)

// releaseTags are the version tags of a tag ref, as the project's build.py makes them (before
// "-{tag}"): refs/tags/vX.Y.Z and refs/tags/X.Y.Z give X, X.Y and X.Y.Z (the v dropped); any
// other tag name gives itself with each run of characters outside [A-Za-z0-9_.-] made one "-",
// trimmed of "." and "-" ("unknown" when nothing is left). Nil for a ref that is not a tag.
func releaseTags(ref string) []string {
	name, ok := strings.CutPrefix(ref, "refs/tags/")
	if !ok {
		return nil
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return nil
	}
	if m := semver.FindStringSubmatch(name); m != nil {
		return []string{m[1], m[1] + "." + m[2], m[1] + "." + m[2] + "." + m[3]}
	}
	if s := strings.Trim(nonRefOK.ReplaceAllString(name, "-"), ".-"); s != "" {
		return []string{s}
	}
	return []string{"unknown"}
}

// maxBaseSlug is the longest base slug.
const maxBaseSlug = 64

// baseSlug is image as a tag, byte for byte as the project's build.py makes it (_base_slug,
// build.py:276-312): "/" → "_s_", ":" → "_tag_", nothing else replaced. Over 64 characters it
// keeps the whole tag part (after the last "_tag_") and the last path segment of the
// repository, shortening the segment first, then "-" and the first 12 hex digits of the sha256
// of that full slug. A digest-pinned image ("repo@sha256:<64 hex>") is always over 64: its tag
// part is the digest's hex, so the "@" never reaches the tag, and the hash is of the slug with
// its "@". Only a slug short enough to keep an "@" (a digest no registry has, like
// "python@sha256:abc") is not a valid tag as build.py makes it; there, and only there, the "@"
// becomes "_at_".
func baseSlug(image string) string {
	slug := strings.NewReplacer("/", "_s_", ":", "_tag_").Replace(image)
	if len(slug) <= maxBaseSlug {
		return strings.ReplaceAll(slug, "@", "_at_")
	}
	sum := sha256.Sum256([]byte(slug))
	suffix := "-" + hex.EncodeToString(sum[:])[:12]
	repo, tag := slug, ""
	if i := strings.LastIndex(slug, "_tag_"); i >= 0 {
		repo, tag = slug[:i], slug[i+len("_tag_"):]
	}
	if i := strings.LastIndex(repo, "_s_"); i >= 0 {
		repo = repo[i+len("_s_"):]
	}
	return strings.ReplaceAll(shortenIdent(repo, tag, maxBaseSlug-len(suffix)), "@", "_at_") + suffix
}

// shortenIdent is build.py's _truncate_ident: repo and "_tag_"+tag in budget characters,
// cutting the repository segment before the tag part.
func shortenIdent(repo, tag string, budget int) string {
	tagPart := ""
	if tag != "" {
		tagPart = "_tag_" + tag
	}
	switch full := repo + tagPart; {
	case len(full) <= budget:
		return full
	case tagPart == "":
		return truncate(repo, budget)
	case len(tagPart) <= budget:
		return truncate(repo, budget-len(tagPart)) + tagPart
	default:
		return truncate(tagPart, budget)
	}
}

func truncate(s string, n int) string {
	if n < 0 {
		n = 0
	}
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Repository returns the repository of an image reference ("registry:5000/team/app" of
// "registry:5000/team/app:1.0" or of "...@sha256:..."), parsed with go-containerregistry.
func Repository(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	return r.Context().Name(), nil
}

// Tag returns the tag of an image reference ("latest" when it has none); a digest reference
// has no tag to build into and is an error.
func Tag(ref string) (string, error) {
	t, err := name.NewTag(ref)
	if err != nil {
		return "", err
	}
	return t.TagStr(), nil
}

// References joins the repository and each tag into a full reference, checked.
func References(repository string, tags []string) ([]string, error) {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		ref, err := name.NewTag(repository + ":" + t)
		if err != nil {
			return nil, fmt.Errorf("%s:%s is not a valid image reference: %w", repository, t, err)
		}
		out = append(out, ref.String())
	}
	return out, nil
}
