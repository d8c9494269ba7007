package pipeline

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/dockertest"
	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// Stopping serve (its context cancelled, as the targets do at Ctrl-C or SIGTERM) while a real
// BuildKit build runs: the client polling it is told CANCELLED, the step's process ends, no
// file stays, and Serve returns an interruption the targets turn into 130 or 143.
func TestStoppingServeCancelsARunningBuildKitBuildAndLeavesNothing(t *testing.T) {
	for _, builder := range []string{"docker", "buildkit"} {
		for _, stop := range []string{"Ctrl-C"} {
			t.Run(builder+" "+stop, func(t *testing.T) {
				env := map[string]string{"SERVE_ADDR": "127.0.0.1:0", "RUNTIME_API_KEY": "k", "SERVE_BUILDER": builder}
				image := "localhost/runtime/stop-issue10:1"
				if builder == "docker" {
					dockertest.Require(t)
				} else {
					env["BUILDKIT_HOST"] = dockertest.BuildkitHost(t)
					image = "127.0.0.1:1/team/never-pushed:1" // cancelled long before it would push
					env["SERVE_REGISTRY_PREFIX"] = "127.0.0.1:1/team"
				}
				archive, marker := dockertest.SleepingContext(t)
				tmp := t.TempDir()
				t.Setenv("TMPDIR", tmp) // serve's work directory goes below it
				cfg := load(t, env)

				var logs bytes.Buffer
				ctx, ctrlC := context.WithCancel(context.Background())
				defer ctrlC()
				client, _, done := startServe(t, func(ready func(string)) error {
					return Serve(ctx, cfg.Serve, progress.New(&logs, "plain"), ready)
				})
				id, err := client.SubmitBuild(context.Background(), runtimeapi.BuildRequest{Archive: archive, TargetImage: image})
				if err != nil {
					t.Fatal(err)
				}
				if !dockertest.WaitFor(60*time.Second, func() bool { return len(dockertest.Processes(marker)) > 0 }) {
					t.Fatalf("the step %q never ran", marker)
				}

				polled := make(chan runtimeapi.Status, 1)
				go func() {
					st, _ := client.WaitForBuild(context.Background(), id, runtimeapi.Wait{FirstPoll: 100 * time.Millisecond, Interval: 500 * time.Millisecond, Deadline: time.Now().Add(30 * time.Second)})
					polled <- st
				}()
				ctrlC()
				var served error
				select {
				case served = <-done:
				case <-time.After(5 * time.Second): // mage's grace after Ctrl-C
					t.Fatalf("serve did not stop within 5s of %s", stop)
				}
				var ie *InterruptedError
				if !errors.As(served, &ie) {
					t.Fatalf("serve ended with %v, want an interruption", served)
				}
				if st := <-polled; st.Status != "CANCELLED" {
					t.Fatalf("the client polling the build saw %q, want CANCELLED\n%s", st.Status, logs.String())
				}
				if !dockertest.WaitFor(20*time.Second, func() bool { return len(dockertest.Processes(marker)) == 0 }) {
					t.Fatalf("the build step still runs after serve ended: %v", dockertest.Processes(marker))
				}
				var files []string
				filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						files = append(files, p)
					}
					return nil
				})
				if len(files) != 0 {
					t.Fatalf("files left after serve ended: %v", files)
				}
				if !strings.Contains(logs.String(), "CANCELLED") {
					t.Fatalf("the server's log does not say the build was cancelled:\n%s", logs.String())
				}
			})
		}
	}
}
