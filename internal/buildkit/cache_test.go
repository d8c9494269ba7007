package buildkit

import (
	"fmt"
	"strings"
	"testing"
)

func TestTheBranchIsWhatATagPutsBeforeTheFullCommitTagsEnding(t *testing.T) {
	sha := "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name string
		tags []string
		want string
	}{
		{"a branch build", []string{"r/app:0123456-python", "r/app:" + sha + "-python", "r/app:feature-x-python", "r/app:0123456-ubuntu-24.04"}, "feature-x"},
		{"bare tags and a target suffix", []string{"0123456-python-source", sha + "-python-source", "main-python-source"}, "main"},
		{"a registry with a port", []string{"127.0.0.1:5000/r/app:" + sha + "-py", "127.0.0.1:5000/r/app:dev-py"}, "dev"},
		{"a detached HEAD: the commit's tags only", []string{"r/app:0123456-python", "r/app:" + sha + "-python"}, ""},
		{"another client's tags", []string{"latest", "v1"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Branch(tc.tags)
			if got != tc.want || ok != (tc.want != "") {
				t.Fatalf("Branch = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

func TestTheCacheLivesUnderTheStageAndBranchWithMainAsFallback(t *testing.T) {
	refs := func(mode CacheMode, stage, branch string) string {
		imports, exports := RegistryCache("127.0.0.1:5000/r/app", stage, branch, mode)
		var s []string
		for _, e := range imports {
			s = append(s, "from "+e.Attrs["ref"])
		}
		for _, e := range exports {
			s = append(s, fmt.Sprintf("to %s mode=%s", e.Attrs["ref"], e.Attrs["mode"]))
		}
		return strings.Join(s, "; ")
	}
	for _, tc := range []struct{ mode, stage, branch, want string }{
		{"max", "source", "feature/X", "from 127.0.0.1:5000/r/app:buildcache-source-feature-x; from 127.0.0.1:5000/r/app:buildcache-source-main; to 127.0.0.1:5000/r/app:buildcache-source-feature-x mode=max"},
		{"min", "", "main", "from 127.0.0.1:5000/r/app:buildcache-default-main; to 127.0.0.1:5000/r/app:buildcache-default-main mode=min"},
		{"max", "binary", "", "from 127.0.0.1:5000/r/app:buildcache-binary; from 127.0.0.1:5000/r/app:buildcache-binary-main; to 127.0.0.1:5000/r/app:buildcache-binary mode=max"},
		{"off", "binary", "main", ""},
	} {
		if got := refs(CacheMode(tc.mode), tc.stage, tc.branch); got != tc.want {
			t.Errorf("%s %q %q:\n got %s\nwant %s", tc.mode, tc.stage, tc.branch, got, tc.want)
		}
	}
	if tag := cacheTag(strings.Repeat("s", 100), strings.Repeat("b", 100)); len(tag) > 128 {
		t.Fatalf("cache tag of %d characters", len(tag))
	}
}
