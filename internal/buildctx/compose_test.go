package buildctx

import (
	"archive/tar"
	"testing"
)

func TestComposePutsTheStandaloneDockerfileAtTheRootAndKeepsWhatABuilderReads(t *testing.T) {
	selected := []Entry{
		{Name: "Dockerfile", Type: tar.TypeReg, Data: []byte("FROM old\n")},
		{Name: "app.py", Type: tar.TypeReg, Data: []byte("print(1)\n")},
		{Name: "Dockerfile.dockerignore", Type: tar.TypeReg, Data: []byte("stale\n")},
	}
	for _, tt := range []struct {
		name      string
		c         Composition
		replaced  bool
		chosen    bool   // the chosen Dockerfile is kept at its path
		ownIgnore string // the content of Dockerfile.dockerignore; "" when absent
	}{
		{"the root Dockerfile made standalone", Composition{Chosen: "Dockerfile", Ignore: IgnoreFile{Path: ".dockerignore"}}, false, false, ""},
		{"another Dockerfile with its own ignore file", Composition{Chosen: "docker/Dockerfile", ChosenSize: 9, Root: "/src",
			Ignore: IgnoreFile{Path: "docker/Dockerfile.dockerignore"}, IgnoreData: []byte("*.md\n")}, true, true, "*.md\n"},
		{"the template", Composition{}, true, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.Dockerfile = []byte("FROM scratch\n")
			entries, replaced := Compose(selected, tt.c)
			byName := map[string]Entry{}
			for _, e := range entries {
				byName[e.Name] = e
			}
			if replaced != tt.replaced || string(byName["Dockerfile"].Data) != "FROM scratch\n" || byName["app.py"].Name == "" {
				t.Fatalf("replaced %v, entries %v", replaced, byName)
			}
			if _, ok := byName[tt.c.Chosen]; tt.chosen && !ok {
				t.Errorf("%s is not kept at its path", tt.c.Chosen)
			}
			if got := string(byName["Dockerfile.dockerignore"].Data); got != tt.ownIgnore {
				t.Errorf("Dockerfile.dockerignore %q, want %q", got, tt.ownIgnore)
			}
			if byName["docker"].Type != tar.TypeDir && tt.chosen {
				t.Errorf("no directory entry for docker/: %v", byName)
			}
		})
	}
	if string(selected[0].Data) != "FROM old\n" {
		t.Fatal("Compose changed the selection it was given")
	}
}
