package runtimeapi

import "testing"

func TestAKeyTooShortToBeASecretLeavesWordsWhole(t *testing.T) {
	for key, want := range map[string]string{
		"k":              "load build definition from Dockerfile",
		"longer-key-123": "load build definition from Dockerfile [REDACTED]",
	} {
		got := newRedactor(key).Replace("load build definition from Dockerfile " + key)
		if key == "k" {
			want += " k"
		}
		if got != want {
			t.Errorf("key %q: got %q, want %q", key, got, want)
		}
	}
}
