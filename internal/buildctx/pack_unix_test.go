//go:build unix

package buildctx

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/gittest"
)

// A FIFO, or a link to one, put where a listed file was must not hang packing (issue 11, 8).
func TestWriteRefusesAFileThatBecameAFIFOOrALink(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "outside.txt")
	os.WriteFile(outside, []byte("not for the archive"), 0o644)
	tests := []struct {
		name string
		swap func(path string) error
		want string
	}{
		{"a FIFO", func(p string) error { return syscall.Mkfifo(p, 0o644) }, "became a named pipe"},
		{"a link to a file outside", func(p string) error { return os.Symlink(outside, p) }, "became a symbolic link"},
		{"a directory", func(p string) error { return os.Mkdir(p, 0o755) }, "became a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, out := t.TempDir(), t.TempDir()
			gittest.Write(t, root, map[string]string{"a.txt": "a", "swapped.txt": "listed as a file"})
			entries, _, err := Scan(root, []string{"a.txt", "swapped.txt"})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(root, "swapped.txt")
			os.Remove(path)
			if err := tt.swap(path); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := Write(context.Background(), out, "a.tar.gz", entries, epoch, nil)
				done <- err
			}()
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close() // lets the reader of the old code go
				}
				t.Fatal("packing hangs on the swapped file")
			}
			var nr *NotRegularError
			if !errors.As(err, &nr) || !strings.Contains(err.Error(), "swapped.txt") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a NotRegularError naming swapped.txt, %q", err, tt.want)
			}
			if left, _ := os.ReadDir(out); len(left) != 0 {
				t.Fatalf("left behind: %v", left)
			}
		})
	}
}
