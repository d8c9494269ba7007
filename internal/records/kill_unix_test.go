//go:build unix

package records

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

// TestARecordSurvivesKill9 writes a record in a child process that then kills itself with
// SIGKILL, and reads it back: Put is durable when it returns.
func TestARecordSurvivesKill9(t *testing.T) {
	if dir := os.Getenv("RECORDS_KILL9_DIR"); dir != "" {
		s, err := Open(dir, Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		if err := s.Put(Record{ID: "survivor", Status: runtimeapi.Working, Queued: t0}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestARecordSurvivesKill9$")
	cmd.Env = append(os.Environ(), "RECORDS_KILL9_DIR="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child did not die by SIGKILL: %v: %s", err, out)
	}
	s := open(t, dir, Options{}) // the dead child's lock went with it
	r, ok, err := s.Get("survivor")
	if err != nil || !ok || r.Status != runtimeapi.Working {
		t.Fatalf("after kill -9: %+v, found %v, %v", r, ok, err)
	}
}
