package pipeline

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/gittest"
	"github.com/runtimebuild/runtimebuild/internal/progress"
)

// The skip is decided by what was packed (issue 16.1): the same archive finds its image by the
// content tag; a dirty tree, other BUILD_ARGS or another tree outside git build, although the
// commit's names are the same.
func TestOnlyTheSameArchiveSkipsTheBuild(t *testing.T) {
	reg, api := registryServer(t)
	src := agentServer(t, nil)
	plain := func(content string) string { // outside git: the SHA is "unknown" for every tree
		dir := t.TempDir()
		gittest.Write(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY app.py /\n", "app.py": content})
		return dir
	}
	treeA, treeB := plain("print('a')\n"), plain("print('b')\n")
	out := t.TempDir()
	var cleanImage string
	for i, step := range []struct {
		name    string
		env     map[string]string
		prepare func()
		built   bool
	}{
		{"the first build", nil, nil, true},
		{"the same archive again", nil, nil, false},
		{"a dirty tree", nil, func() { gittest.Write(t, src, map[string]string{"pyproject.toml": "[project]\nname = \"changed\"\n"}) }, true},
		{"the dirty tree again", nil, nil, false},
		// The dirty build moved the commit's tags; the clean archive still finds its own image.
		{"the clean tree again", nil, func() { gittest.Git(t, src, "checkout", "--", "pyproject.toml") }, false},
		{"other BUILD_ARGS", map[string]string{"BUILD_ARGS": "ENABLE_VERTEX=1"}, nil, true},
		{"a tree outside git", map[string]string{"SOURCE_DIR": treeA}, nil, true},
		{"another tree outside git", map[string]string{"SOURCE_DIR": treeB}, nil, true},
		{"that tree again", map[string]string{"SOURCE_DIR": treeB}, nil, false},
	} {
		if step.prepare != nil {
			step.prepare()
		}
		env := map[string]string{"SOURCE_DIR": src, "OUTPUT_DIR": out, "RUNTIME_API_URL": api.URL, "RUNTIME_API_KEY": "k", "POLL_INTERVAL": "20ms"}
		for k, v := range step.env {
			env[k] = v
		}
		var logs bytes.Buffer
		before := len(reg.builds)
		built, err := upload(context.Background(), load(t, env), progress.New(&logs, "plain"))
		if err != nil {
			t.Fatalf("step %d (%s): %v\n%s", i, step.name, err, logs.String())
		}
		if built.Skipped == step.built || (len(reg.builds) > before) != step.built {
			t.Fatalf("step %d (%s): %+v, want built %v\n%s", i, step.name, built, step.built, logs.String())
		}
		if !step.built && (!strings.HasPrefix(built.Image, "registry.test/rt/agent-server:ctx-") ||
			!strings.Contains(logs.String(), built.Image+" exists already: it was built from this very archive (sha256:")) {
			t.Fatalf("step %d (%s): the skip does not say which image and why:\n%s", i, step.name, logs.String())
		}
		switch step.name {
		case "the same archive again":
			cleanImage = built.Image
		case "the clean tree again":
			if built.Image != cleanImage {
				t.Fatalf("the clean archive reported %s, want its own image %s", built.Image, cleanImage)
			}
		}
	}
}
