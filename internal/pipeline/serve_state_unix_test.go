//go:build unix

package pipeline

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/progress"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// TestServeAnswersEveryEarlierBuildAfterKill9 runs serve (SERVE_BUILDER=check) in a child
// process, builds once, kills the child with SIGKILL and starts serve again on the same
// SERVE_STATE_DIR: the build is still answered. A second serve on that directory meanwhile is
// refused, naming it.
func TestServeAnswersEveryEarlierBuildAfterKill9(t *testing.T) {
	if os.Getenv("PIPELINE_SERVE_CHILD") == "1" {
		cfg := load(t, map[string]string{"SERVE_ADDR": "127.0.0.1:0", "RUNTIME_API_KEY": "k", "SERVE_BUILDER": "check", "SERVE_STATE_DIR": os.Getenv("PIPELINE_STATE_DIR")})
		err := Serve(context.Background(), cfg.Serve, progress.New(io.Discard, "quiet"), func(addr string) { os.Stdout.WriteString(addr + "\n") })
		t.Fatalf("serve: %v", err)
	}
	state := t.TempDir()
	child := func() (*exec.Cmd, *runtimeapi.Client) {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestServeAnswersEveryEarlierBuildAfterKill9$")
		cmd.Env = append(os.Environ(), "PIPELINE_SERVE_CHILD=1", "PIPELINE_STATE_DIR="+state)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		addr := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(out).ReadString('\n')
			addr <- strings.TrimSpace(line)
			io.Copy(io.Discard, out)
		}()
		var a string
		select {
		case a = <-addr:
		case <-time.After(30 * time.Second):
			t.Fatal("the serve child did not listen within 30s")
		}
		c, err := runtimeapi.New("http://"+a, "k", runtimeapi.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return cmd, c
	}

	first, client := child()
	archive, _ := makeContextArchive(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := client.SubmitBuild(ctx, runtimeapi.BuildRequest{Archive: archive, TargetImage: "localhost/runtime/app:1"})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := client.WaitForBuild(ctx, id, runtimeapi.Wait{FirstPoll: 10 * time.Millisecond, Interval: 20 * time.Millisecond}); err != nil || st.Status != runtimeapi.Success {
		t.Fatalf("the build: %+v %v", st, err)
	}

	second := load(t, map[string]string{"SERVE_ADDR": "127.0.0.1:0", "RUNTIME_API_KEY": "k", "SERVE_STATE_DIR": state})
	err = serve(ctx, second.Serve, progress.New(io.Discard, "quiet"), untilStopped{}, nil)
	if err == nil || !strings.Contains(err.Error(), "SERVE_STATE_DIR="+state) || !strings.Contains(err.Error(), "another serve") {
		t.Fatalf("a second serve on the state directory: %v", err)
	}

	first.Process.Signal(syscall.SIGKILL)
	err = first.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the serve child did not die by SIGKILL: %v", err)
	}
	_, client = child()
	st, err := client.BuildStatus(ctx, id)
	if err != nil || st.Status != runtimeapi.Success || st.Image != "localhost/runtime/app:1" {
		t.Fatalf("after kill -9 and a restart: %+v %v", st, err)
	}
}
