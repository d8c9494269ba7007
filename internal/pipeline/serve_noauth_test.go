package pipeline

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/exitcode"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

func TestNoAuthBeyondLoopbackNeedsASecondVariable(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		refused bool
	}{
		{"every interface", map[string]string{"SERVE_ADDR": "0.0.0.0:0", "SERVE_NO_AUTH": "true"}, true},
		{"every interface, allowed", map[string]string{"SERVE_ADDR": "0.0.0.0:0", "SERVE_NO_AUTH": "true", "SERVE_ALLOW_REMOTE_NO_AUTH": "true"}, false},
		{"loopback", map[string]string{"SERVE_ADDR": "127.0.0.1:0", "SERVE_NO_AUTH": "true"}, false},
		{"every interface with a key", map[string]string{"SERVE_ADDR": "0.0.0.0:0", "RUNTIME_API_KEY": "k"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ready := func(string) { cancel() } // listening: stop at once
			err := serve(ctx, load(t, tt.env).Serve, progress.New(io.Discard, "quiet"), server.CheckBuilder{}, ready)
			var usage *exitcode.Error
			if tt.refused {
				if !errors.As(err, &usage) || usage.Code != 2 || !strings.Contains(err.Error(), "SERVE_ALLOW_REMOTE_NO_AUTH=true") {
					t.Fatalf("err %v, want a usage error (exit 2) naming SERVE_ALLOW_REMOTE_NO_AUTH", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("serve: %v", err)
			}
		})
	}
}
