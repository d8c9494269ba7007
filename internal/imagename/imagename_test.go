package imagename

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

func TestTheFullTagSetOnABranch(t *testing.T) {
	in := Input{SHA: sha, Target: "binary", Tags: []string{"python", "latest"}, Ref: "refs/heads/Feature/New_UI",
		BaseImage: "nikolaik/python-nodejs:python3.13-nodejs22-slim"}
	got, err := Tags(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"0123456-python", sha + "-python", "feature-new-ui-python",
		"0123456-latest", sha + "-latest", "feature-new-ui-latest",
		"0123456-nikolaik_s_python-nodejs_tag_python3.13-nodejs22-slim",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("tags\n%q\nwant\n%q", got, want)
	}
	in.Target = "source-minimal"
	got, _ = Tags(in)
	for _, tag := range got {
		if !strings.HasSuffix(tag, "-source-minimal") {
			t.Errorf("TARGET=source-minimal: tag %s lacks the target suffix", tag)
		}
	}
	if Primary(in) != "0123456-python-source-minimal" || got[0] != Primary(in) {
		t.Errorf("primary %s, first tag %s", Primary(in), got[0])
	}
}

// The expected tag sets below were computed with the project's build.py tag logic
// (BuildOptions.all_tags with include_versioned=True), run with python3.
func TestTagSetsMatchTheProjectsBuild(t *testing.T) {
	const django = "docker.io/swebench/sweb.eval.x86_64.django_1776_django-15819:latest"
	for _, tt := range []struct {
		name, ref, base, target string
		tags                    []string
		want                    []string
	}{
		{"a semver release ref with its v", "refs/tags/v1.12.3", "python:3.13", "source", []string{"python"},
			[]string{"0123456-python-source", sha + "-python-source", "0123456-python_tag_3.13-source", "1-python-source", "1.12-python-source", "1.12.3-python-source"}},
		{"a semver release ref without a v, two custom tags", "refs/tags/1.2.3", "python:3.13", "binary", []string{"python", "latest"},
			[]string{"0123456-python", sha + "-python", "0123456-latest", sha + "-latest", "0123456-python_tag_3.13",
				"1-python", "1.2-python", "1.2.3-python", "1-latest", "1.2-latest", "1.2.3-latest"}},
		{"a pre-release tag is one tag, its v kept", "refs/tags/v1.2.3-rc1", "python:3.13", "source-minimal", []string{"python"},
			[]string{"0123456-python-source-minimal", sha + "-python-source-minimal", "0123456-python_tag_3.13-source-minimal", "v1.2.3-rc1-python-source-minimal"}},
		{"any other tag name is one tag", "refs/tags/build-docker", django, "binary", []string{"python"},
			[]string{"0123456-python", sha + "-python", "0123456-sweb.eval.x86_64.django_1776_django-1581_tag_latest-202958a61ee7", "build-docker-python"}},
		{"two numbers are not semver", "refs/tags/v1.2", "python:3.13", "binary", []string{"python"},
			[]string{"0123456-python", sha + "-python", "0123456-python_tag_3.13", "v1.2-python"}},
		{"a tag name is sanitized and trimmed", "refs/tags/.release/2026 Nov!-", "python:3.13", "binary", []string{"python"},
			[]string{"0123456-python", sha + "-python", "0123456-python_tag_3.13", "release-2026-Nov-python"}},
		{"a bare branch name", "main", "python:3.13", "binary-minimal", []string{"python"},
			[]string{"0123456-python-binary-minimal", sha + "-python-binary-minimal", "main-python-binary-minimal", "0123456-python_tag_3.13-binary-minimal"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Tags(Input{SHA: sha, Target: tt.target, Tags: tt.tags, Ref: tt.ref, BaseImage: tt.base})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("tags\n%q\nwant\n%q", got, tt.want)
			}
			for _, tag := range got {
				if _, err := name.NewTag("registry.test/rt/agent-server:"+tag, name.StrictValidation); err != nil {
					t.Errorf("tag %q: %v", tag, err)
				}
			}
		})
	}
	for _, ref := range []string{"", "unknown", "HEAD", "refs/pull/3/merge", "refs/tags/"} {
		got, _ := Tags(Input{SHA: sha, Target: "source", Tags: []string{"python"}, Ref: ref, BaseImage: "python:3.13"})
		if len(got) != 3 {
			t.Errorf("ref %q: %q, want no branch and no release tags", ref, got)
		}
	}
}

func TestTheBaseTagIsTheOneOfTheSet(t *testing.T) {
	in := Input{SHA: sha, Target: "source", Tags: []string{"python"}, BaseImage: "python:3.13"}
	tag, ok := BaseTag(in)
	all, _ := Tags(in)
	if !ok || tag != "0123456-python_tag_3.13-source" || !slices.Contains(all, tag) {
		t.Fatalf("base tag %q (%v) in %q", tag, ok, all)
	}
	if _, ok := BaseTag(Input{SHA: sha, Tags: []string{"python"}}); ok {
		t.Fatal("a base tag without a known base image")
	}
}

// build.py names the base tag from BuildOptions.base_image (BASE_IMAGE) alone, whatever the
// target and whatever the target's stage starts FROM (base_image_slug build.py:456-458,
// base_tag build.py:501-503), then suffixes every tag with the target (build.py:536-538). The
// builder case was computed with build.py (all_tags, include_versioned_tag=False, ref
// refs/heads/main); binary-builder is not one of build.py's targets (build.py:39-47) and
// follows the same rule.
func TestTheBaseTagOfEveryTargetNamesTheBaseImageGiven(t *testing.T) {
	digest := "nikolaik/python-nodejs@sha256:" + strings.Repeat("0", 64)
	for _, tt := range []struct {
		target, base string
		want         []string
	}{
		{"builder", digest, []string{"0123456-python-builder", sha + "-python-builder", "main-python-builder",
			"0123456-_tag_0000000000000000000000000000000000000000000000-52640defe79a-builder"}},
		{"builder", "nikolaik/python-nodejs:python3.12-nodejs22-slim", []string{"0123456-python-builder", sha + "-python-builder", "main-python-builder",
			"0123456-nikolaik_s_python-nodejs_tag_python3.12-nodejs22-slim-builder"}},
		{"binary-builder", "nikolaik/python-nodejs:python3.12-nodejs22-slim", []string{"0123456-python-binary-builder", sha + "-python-binary-builder", "main-python-binary-builder",
			"0123456-nikolaik_s_python-nodejs_tag_python3.12-nodejs22-slim-binary-builder"}},
	} {
		got, err := Tags(Input{SHA: sha, Target: tt.target, Tags: []string{"python"}, Ref: "refs/heads/main", BaseImage: tt.base})
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("TARGET=%s on %s: %q, %v\nwant %q", tt.target, tt.base, got, err, tt.want)
		}
	}
}

func TestEveryTagIsValidForTheRegistry(t *testing.T) {
	long := strings.Repeat("very-long-branch-name/", 10)
	for _, in := range []Input{
		{SHA: sha, Target: "binary-minimal", Tags: []string{"python", strings.Repeat("x", 70)}, Ref: "refs/heads/" + long,
			BaseImage: "registry.example.com:5000/some/deeply/nested/organisation/python-nodejs:python3.13-nodejs22-slim-bookworm"},
		{SHA: "unknown", Target: "binary", Tags: []string{"python"}, Ref: "refs/heads/_weird__"},
		{SHA: sha, Target: "binary", Tags: []string{"py"}, BaseImage: "python@sha256:" + strings.Repeat("a", 64)},
		{SHA: sha, Target: "source", Tags: []string{"py"}, Ref: "refs/tags/_a tag/with spaces:and:colons@x", BaseImage: "localhost:5000/x"},
	} {
		tags, err := Tags(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags {
			if _, err := name.NewTag("registry.test/rt/agent-server:"+tag, name.StrictValidation); err != nil || len(tag) > 128 {
				t.Errorf("tag %q (%d characters) is not valid: %v", tag, len(tag), err)
			}
		}
	}
	_, err := Tags(Input{SHA: sha, Target: "source-minimal", Tags: []string{strings.Repeat("x", 100)}})
	var te *TagError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "at most 128") {
		t.Fatalf("a tag over 128 characters: %v", err)
	}
}

// The expected slugs were computed with build.py's own _base_slug (build.py:276-312, at
// OpenHands/software-agent-sdk 611629e), run with python3 on each image as it is: "/" → "_s_",
// ":" → "_tag_" (build.py:288), sha256 of that slug (build.py:293), rsplit on the last "_tag_"
// (build.py:298), the last "_s_" segment (build.py:302-303), _truncate_ident (build.py:250-273).
func TestBaseSlugMatchesTheProjectsBuild(t *testing.T) {
	for _, tt := range []struct{ image, want string }{
		{"nikolaik/python-nodejs:python3.13-nodejs22-slim", "nikolaik_s_python-nodejs_tag_python3.13-nodejs22-slim"},
		{"python:3.13-bookworm", "python_tag_3.13-bookworm"},
		{"docker.io/swebench/sweb.eval.x86_64.django_1776_django-15819:latest", "sweb.eval.x86_64.django_1776_django-1581_tag_latest-202958a61ee7"},
		{"registry.example.com:5000/some/deeply/nested/organisation/python-nodejs:python3.13-nodejs22-slim-bookworm", "python-nodejs_tag_python3.13-nodejs22-slim-bookworm-a4595676c424"},
		{"registry.example.com/deep/path/python-nodejs:python3.13-nodejs22-slim-bookworm-x", "python-node_tag_python3.13-nodejs22-slim-bookworm-x-ffd8ac55f075"},
		{"ghcr.io/openhands/very-long-organisation-name/and-a-very-long-repository-name-too", "and-a-very-long-repository-name-too-d947bc4a4618"},
		{"ghcr.io/o/r:" + strings.Repeat("t", 60), "_tag_tttttttttttttttttttttttttttttttttttttttttttttt-fb2ef20711fd"},
		{"localhost:5000/team/a-rather-long-repository-name-for-testing-slugs-here", "_tag_5000_s_team_s_a-rather-long-repository-name-fo-e6f95f16cbb7"},
		// Digest-pinned: the hash is of the slug with its "@" (build.py:288,293), and the tag part
		// kept is the digest's hex (build.py:298,311 → _truncate_ident's case 3, build.py:273).
		{"nikolaik/python-nodejs@sha256:" + strings.Repeat("0", 64), "_tag_0000000000000000000000000000000000000000000000-52640defe79a"},
		{"python@sha256:" + strings.Repeat("a", 64), "_tag_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-2d2f71877fe2"},
		{"nikolaik/python-nodejs:python3.12-nodejs22-slim@sha256:" + strings.Repeat("1", 64), "_tag_1111111111111111111111111111111111111111111111-6dbdff1e92de"},
		{"ghcr.io/o/r@sha512:" + strings.Repeat("b", 128), "_tag_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-a31564b9b047"},
		// Ours alone: build.py gives "python@sha256_tag_abc", which no registry takes as a tag; a
		// digest this short names no image, and only such a slug keeps an "@" to replace.
		{"python@sha256:abc", "python_at_sha256_tag_abc"},
	} {
		if got := baseSlug(tt.image); got != tt.want {
			t.Errorf("baseSlug(%s)\n= %s\nwant %s", tt.image, got, tt.want)
		}
	}
	long := "registry.example.com:5000/some/deeply/nested/organisation/python-nodejs:python3.13-nodejs22-slim-bookworm"
	if baseSlug(strings.Replace(long, "nested", "other", 1)) == baseSlug(long) {
		t.Fatal("two long bases share a slug: the digest of the full slug must tell them apart")
	}
}

func TestRepositoryAndTagAreParsedNotSplit(t *testing.T) {
	for ref, want := range map[string]string{
		"registry:5000/team/app:1.0":                             "registry:5000/team/app",
		"registry:5000/team/app":                                 "registry:5000/team/app",
		"registry.test/rt/app@sha256:" + strings.Repeat("b", 64): "registry.test/rt/app",
	} {
		if got, err := Repository(ref); got != want || err != nil {
			t.Errorf("Repository(%s) = %q, %v; want %q", ref, got, err, want)
		}
	}
	if tag, err := Tag("registry:5000/team/app"); tag != "latest" || err != nil {
		t.Errorf("Tag without one: %q, %v", tag, err)
	}
	refs, err := References("registry:5000/team/app", []string{"a", "b"})
	if err != nil || !slices.Equal(refs, []string{"registry:5000/team/app:a", "registry:5000/team/app:b"}) {
		t.Errorf("References: %q, %v", refs, err)
	}
}
