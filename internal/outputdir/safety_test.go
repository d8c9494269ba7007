package outputdir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckRefusesTheSourceAndWhatCleaningWouldRuin(t *testing.T) {
	src := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(src, link); err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	for _, tt := range []struct {
		name     string
		dir      string
		cleaning bool
		want     Unsafe
	}{
		{"the source itself", src, false, IsSource},
		{"the source through a link", link, false, IsSource},
		{"the root, cleaning", string(filepath.Separator), true, IsRoot},
		{"the root, not cleaning", string(filepath.Separator), false, 0},
		{"the home directory, cleaning", home, true, IsHome},
		{"a directory of its own", filepath.Join(src, "runtime-build"), true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.dir == "" {
				t.Skip("no home directory")
			}
			err := Check(src, tt.dir, tt.cleaning)
			var ue *UnsafeError
			switch {
			case tt.want == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != 0 && (!errors.As(err, &ue) || ue.Reason != tt.want):
				t.Fatalf("err = %v, want reason %d", err, tt.want)
			}
		})
	}
}

func TestWithinTellsAPathInsideTheRoot(t *testing.T) {
	root := t.TempDir()
	if rel, ok := Within(root, filepath.Join(root, "out", "x")); !ok || rel != "out/x" {
		t.Fatalf("inside: %q %v", rel, ok)
	}
	for _, dir := range []string{root, filepath.Dir(root), filepath.Join(root, "..", "elsewhere")} {
		if rel, ok := Within(root, dir); ok {
			t.Errorf("%s is not inside %s: %q", dir, root, rel)
		}
	}
}
