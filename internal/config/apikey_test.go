package config

import (
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/exitcode"
)

func TestAKeyWithControlCharactersIsRefusedWithoutEchoingIt(t *testing.T) {
	for _, key := range []string{"s3cret-key\n", "s3cret\r\nX-Injected: 1", "s3cret\x00key", "\ts3cret-key", "s3cret\x1b[2Jkey"} {
		_, err := Load(func(name string) string {
			if name == "RUNTIME_API_KEY" {
				return key
			}
			return ""
		})
		if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "RUNTIME_API_KEY") {
			t.Errorf("key %q: err = %v, want a usage error naming RUNTIME_API_KEY", key, err)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the key: %q", err)
		}
	}
	if _, err := Load(func(name string) string {
		if name == "RUNTIME_API_KEY" {
			return "an ordinary key: with spaces, ünïcode and ~!@#$%"
		}
		return ""
	}); err != nil {
		t.Errorf("an ordinary key: %v", err)
	}
}
