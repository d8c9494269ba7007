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

func TestTheFullTagSetOnAReleaseAndWithoutABranch(t *testing.T) {
	in := Input{SHA: sha, Target: "source", Tags: []string{"python"}, Ref: "refs/tags/v1.12.3", BaseImage: "python:3.13"}
	got, err := Tags(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0123456-python-source", sha + "-python-source", "0123456-python_tag_3.13-source",
		"1.12.3-python-source", "1.12-python-source", "1-python-source"}
	if !slices.Equal(got, want) {
		t.Fatalf("tags\n%q\nwant\n%q", got, want)
	}
	for _, ref := range []string{"", "unknown", "HEAD", "refs/tags/v1.2", "refs/pull/3/merge"} {
		in.Ref = ref
		got, _ := Tags(in)
		if len(got) != 3 {
			t.Errorf("ref %q: %q, want no branch and no release tags", ref, got)
		}
	}
	in.Ref = "main"
	if got, _ := Tags(in); !slices.Contains(got, "main-python-source") {
		t.Errorf("a bare branch name: %q", got)
	}
}

func TestEveryTagIsValidForTheRegistry(t *testing.T) {
	long := strings.Repeat("very-long-branch-name/", 10)
	for _, in := range []Input{
		{SHA: sha, Target: "binary-minimal", Tags: []string{"python", strings.Repeat("x", 70)}, Ref: "refs/heads/" + long,
			BaseImage: "registry.example.com:5000/some/deeply/nested/organisation/python-nodejs:python3.13-nodejs22-slim-bookworm"},
		{SHA: "unknown", Target: "binary", Tags: []string{"python"}, Ref: "refs/heads/_weird__"},
		{SHA: sha, Target: "binary", Tags: []string{"py"}, BaseImage: "python@sha256:" + strings.Repeat("a", 64)},
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

func TestBaseSlugKeepsToSixtyFourCharacters(t *testing.T) {
	if got := BaseSlug("nikolaik/python-nodejs:python3.12-nodejs22"); got != "nikolaik_s_python-nodejs_tag_python3.12-nodejs22" {
		t.Fatalf("short slug %q", got)
	}
	long := "registry.example.com:5000/some/deeply/nested/organisation/python-nodejs:python3.13-nodejs22-slim-bookworm"
	got := BaseSlug(long)
	if len(got) != 64 || !strings.HasPrefix(got, "python-nodejs_tag_python3.13-nodejs22-slim-bookworm"[:51]) {
		t.Fatalf("long slug %q (%d)", got, len(got))
	}
	if other := BaseSlug(strings.Replace(long, "nested", "other", 1)); other == got {
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
