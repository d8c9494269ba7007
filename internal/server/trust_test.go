package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/server"
)

// Issue 17, row 1: a key holder names images under the registry prefix alone; a name outside
// it is refused before the context is read (here a context of 8 GiB that would take minutes).
func TestNamesOutsideThePrefixAreRefusedBeforeTheContextIsRead(t *testing.T) {
	l := startHardened(t, server.Options{})
	ctxPart := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"context\"; filename=\"c.tar.gz\"\r\n\r\n"
	tests := []struct{ name, fields, detail string }{
		{"a target on Docker Hub", field("target_image", "busybox:latest"), `target_image "busybox:latest" is not under the registry prefix localhost/runtime`},
		{"a target beside the prefix", field("target_image", "localhost/runtime-x/app:1"), "is not under the registry prefix"},
		{"the prefix's registry, another path", field("target_image", "localhost/other/app:1"), "is not under the registry prefix"},
		{"a tag on Docker Hub", field("target_image", "localhost/runtime/app:1") + field("tags", "alpine:3.20"), `the tag "alpine:3.20" is not under`},
		{"a tag on another registry", field("target_image", "localhost/runtime/app:1") + field("tags_0", "registry.example.test/org/prod:latest"), "is not under the registry prefix"},
		{"a target leaving the prefix by ..", field("target_image", "localhost/runtime/../other/app:1"), "is not an image reference (in canonical form)"},
		{"a target with an empty component", field("target_image", "localhost/runtime//app:1"), "is not an image reference (in canonical form)"},
		{"a target with a . component", field("target_image", "localhost/runtime/./app:1"), "is not an image reference (in canonical form)"},
		{"a tag leaving the prefix by ..", field("target_image", "localhost/runtime/app:1") + field("tags", "localhost/runtime/../other/app:1"), "is not an image reference (in canonical form)"},
		{"a target with a digest", field("target_image", "localhost/runtime/app@sha256:"+strings.Repeat("a", 64)), "is a digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, detail := send(t, l.url, hostile{
				name: tt.name, contentType: "multipart/form-data; boundary=" + boundary,
				prefix: tt.fields + ctxPart, fill: "\x1f\x8b", suffix: "\r\n--" + boundary + "--\r\n",
			}, 8<<30)
			if code != http.StatusUnprocessableEntity || !strings.Contains(detail, tt.detail) {
				t.Fatalf("answer %d %q, want 422 with %q", code, detail, tt.detail)
			}
			if dirs := buildDirs(l.base); len(dirs) != 0 {
				t.Fatalf("build directories left: %v", dirs)
			}
		})
	}
}

// A bare tag lands in the target's repository, which is under the prefix: accepted.
func TestBareTagsAndNamesUnderThePrefixAreAccepted(t *testing.T) {
	l := startHardened(t, server.Options{RegistryPrefix: "127.0.0.1:5000/team"})
	ctx := tarGz(t, map[string]string{"Dockerfile": "FROM scratch\n"})
	resp, out := postBuild(t, l.url, hardKey, ctx, "target_image", "127.0.0.1:5000/team/app:1", "tags", "latest", "tags", "127.0.0.1:5000/team/sub/app:2")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /build: %d %v", resp.StatusCode, out)
	}
	resp, out = postBuild(t, l.url, hardKey, ctx, "target_image", "127.0.0.1:5000/teamwork/app:1")
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a repository that only starts like the prefix: %d %v, want 422", resp.StatusCode, out)
	}
}
