package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/exitcode"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestDefaultsAreThoseOfTheContract(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Pack
	if p.SourceDir != "" || p.OutputDir != "runtime-build" || p.ImageName != "agent-server" || p.Target != "binary" || p.TargetSet ||
		p.BaseImage != "" || p.Dockerfile != "auto" || len(p.BuildArgs) != 0 || !slices.Equal(p.Tags, []string{"python"}) ||
		!p.CleanOutput || c.Send.UploadFormat != "multipart" || c.API.PollInterval != 10*time.Second || c.API.BuildTimeout != 30*time.Minute ||
		c.Export.Source != "auto" || c.Output.Progress != "auto" || c.Serve.Addr != "127.0.0.1:8000" || c.Serve.Builder != "docker" {
		t.Fatalf("defaults %+v", c)
	}
}

func TestSHAOverridesInOrder(t *testing.T) {
	c, _ := Load(env(map[string]string{"SDK_SHA": "abc1234", "GITHUB_SHA": "def5678"}))
	d, _ := Load(env(map[string]string{"GITHUB_SHA": "def5678"}))
	if c.Pack.SHAOverride != "abc1234" || d.Pack.SHAOverride != "def5678" {
		t.Fatalf("got %q and %q", c.Pack.SHAOverride, d.Pack.SHAOverride)
	}
}

func TestBadValuesAreUsageErrorsNamingTheVariable(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"TARGET", "fat one", "binary, binary-minimal, source, source-minimal"},
		{"BUILD_ARGS", "A=1,novalue", "NAME=VALUE"},
		{"BUILD_ARGS", "1A=x", "NAME=VALUE"},
		{"TARGET_IMAGE", "Reg/App:1", "image reference"},
		{"CUSTOM_TAGS", "ok,not ok", `CUSTOM_TAGS="not ok"`},
		{"CUSTOM_TAGS", " , ", "at least one tag"},
		{"CLEAN_OUTPUT", "perhaps", "true or false"},
		{"POLL_INTERVAL", "10", "Go duration"},
		{"BUILD_TIMEOUT", "-1m", "positive"},
		{"SOURCE_DATE_EPOCH", "yesterday", "seconds since 1970"},
		{"SDK_SHA", "../../etc", "commit SHA"},
		{"IMAGE_NAME", "Agent Server", "image repository"},
		{"OUTPUT_NAME", "../x.tar.gz", "without directories"},
		{"UPLOAD_FORMAT", "xml", "multipart, json"},
		{"PROGRESS", "loud", "auto, tty, plain, quiet"},
		{"SERVE_WORKERS", "0", "positive whole number"},
		{"SERVE_CACHE_MODE", "inline", "max, min, off"},
		{"BASE_IMAGE", "python:3.12\nRUN evil", "without spaces"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := Load(env(map[string]string{tt.name: tt.value}))
			if err == nil || exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.name) {
				t.Fatalf("err = %v, want a usage error naming %s and containing %q", err, tt.name, tt.want)
			}
		})
	}
}

func TestBuildArgsKeepTheirValuesAndTheLastOneWins(t *testing.T) {
	c, err := Load(env(map[string]string{"BUILD_ARGS": "A=two words, B=it's \"$x\"\nC=\n A=again=1", "TARGET": "base-image", "GITHUB_REF": "refs/heads/ci", "SDK_REF": "refs/tags/v1.2.3"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []BuildArg{{"A", "again=1"}, {"B", `it's "$x"`}, {"C", ""}}
	if p := c.Pack; !slices.Equal(p.BuildArgs, want) || p.Target != "base-image" || !p.TargetSet || p.GitRef != "refs/tags/v1.2.3" {
		t.Fatalf("build args %q, target %q (%v), ref %q (SDK_REF wins over GITHUB_REF)", p.BuildArgs, p.Target, p.TargetSet, p.GitRef)
	}
	if c, _ := Load(env(map[string]string{"GITHUB_REF": "refs/heads/ci"})); c.Pack.GitRef != "refs/heads/ci" {
		t.Fatalf("GITHUB_REF: %q", c.Pack.GitRef)
	}
	if c, _ := Load(env(map[string]string{"SDK_REF": "main"})); c.Pack.GitRef != "main" {
		t.Fatalf("SDK_REF: %q", c.Pack.GitRef)
	}
}

func TestATargetIsStoppedOnlyByTheVariablesItReads(t *testing.T) {
	bad := env(map[string]string{"PULL": "yes", "SERVE_WORKERS": "0", "FORCE": "perhaps"})
	if _, err := LoadFor("context", bad); err != nil {
		t.Fatalf("context stopped by a variable it does not read: %v", err)
	}
	if _, err := LoadFor("upload", bad); err == nil || !strings.Contains(err.Error(), "FORCE") {
		t.Fatalf("upload: %v, want FORCE named", err)
	}
	if _, err := LoadFor("image", bad); err == nil || !strings.Contains(err.Error(), "PULL") {
		t.Fatalf("image: %v, want PULL named", err)
	}
}

func TestReadsListsWhatEachTargetLoads(t *testing.T) {
	for target, want := range map[string][]string{
		"version": {"PROGRESS", "GITHUB_OUTPUT"},
		"status":  {"RUNTIME_API_URL", "RUNTIME_API_KEY", "ALLOW_INSECURE_HTTP", "POLL_INTERVAL", "BUILD_TIMEOUT", "PROGRESS", "GITHUB_OUTPUT"},
	} {
		if got := Reads(target); !slices.Equal(got, want) {
			t.Errorf("Reads(%s) = %v, want %v", target, got, want)
		}
	}
	if r := Reads("upload"); !slices.Contains(r, "SOURCE_DIR") || !slices.Contains(r, "FORCE") || slices.Contains(r, "PULL") {
		t.Errorf("Reads(upload) = %v", r)
	}
}
