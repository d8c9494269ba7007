package docker

import "testing"

func TestWithoutNoticesKeepsOnlyTheBuildsOwnLines(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"the legacy builder notice before the error",
			"DEPRECATED: The legacy builder is deprecated and will be removed in a future release.\n            Install the buildx component to build images with BuildKit:\n            https://docs.docker.com/go/buildx/\n\nCOPY failed: stat nope.txt: file does not exist\n",
			"COPY failed: stat nope.txt: file does not exist\n"},
		{"no notice at all", "Step 2/2 : COPY x /\nCOPY failed: x\n", "Step 2/2 : COPY x /\nCOPY failed: x\n"},
		{"a notice that runs to the end", "DEPRECATED: gone\n  more\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := withoutNotices(tt.in); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
