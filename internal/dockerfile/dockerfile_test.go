package dockerfile

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var targets = []string{"binary", "binary-minimal", "source", "source-minimal"}

func data(target string, files ...string) Data {
	d := Data{
		SHA: "0123456789abcdef0123456789abcdef01234567", ShortSHA: "0123456", Target: target, Targets: targets,
		Tags: []string{"python", "latest"}, BaseImage: "nikolaik/python-nodejs:python3.12-nodejs22", ImageName: "agent-server",
		Files: map[string]bool{},
	}
	for _, f := range append(files, required...) {
		d.Files[f] = true
	}
	return d
}

func TestGoldenDockerfiles(t *testing.T) {
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			got, err := Render("", data(target))
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", target+".Dockerfile")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/dockerfile -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("rendered Dockerfile differs from %s (go test ./internal/dockerfile -update, then review the diff):\n%s", golden, got)
			}
		})
	}
}

var fromLine = regexp.MustCompile(`(?m)^FROM (\S+) AS (\S+)$`)

func TestEveryTargetIsADistinctStageAndTheChosenOneIsLast(t *testing.T) {
	bodies := map[string]string{}
	for _, target := range targets {
		out, err := Render("", data(target))
		if err != nil {
			t.Fatal(err)
		}
		stages := fromLine.FindAllStringSubmatch(string(out), -1)
		if last := stages[len(stages)-1][2]; last != target {
			t.Errorf("TARGET=%s: last stage is %s", target, last)
		}
		base := map[string]string{}
		for _, s := range stages {
			base[s[2]] = s[1]
		}
		for _, want := range []string{"builder", "base-image-minimal", "base-image", "binary", "binary-minimal", "source", "source-minimal"} {
			if _, ok := base[want]; !ok {
				t.Errorf("TARGET=%s: no stage %s", target, want)
			}
		}
		if base["binary-minimal"] != "base-image-minimal" || base["source-minimal"] != "base-image-minimal" ||
			base["binary"] != "base-image" || base["source"] != "base-image" || base["base-image"] != "base-image-minimal" {
			t.Errorf("TARGET=%s: stage bases %v", target, base)
		}
		for _, s := range targets {
			bodies[s] = stageBody(string(out), s)
		}
	}
	seen := map[string]string{}
	for s, body := range bodies {
		if other, dup := seen[body]; dup {
			t.Errorf("stages %s and %s are identical", s, other)
		}
		seen[body] = s
	}
}

// stageBody returns the instructions of a stage after its FROM line.
func stageBody(df, stage string) string {
	var b strings.Builder
	in := false
	sc := bufio.NewScanner(strings.NewReader(df))
	for sc.Scan() {
		line := sc.Text()
		if m := fromLine.FindStringSubmatch(line); m != nil {
			in = m[2] == stage
			b.WriteString(m[1] + "\n")
			continue
		}
		if in {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

var copyLine = regexp.MustCompile(`(?m)^COPY (.+)$`)

func TestTheBuiltinTemplateNamesOnlyRequiredFiles(t *testing.T) {
	out, err := Render("", data("binary"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range copyLine.FindAllStringSubmatch(string(out), -1) {
		fields := strings.Fields(m[1])
		var sources []string
		fromStage := false
		for _, f := range fields[:len(fields)-1] {
			if strings.HasPrefix(f, "--from=") {
				fromStage = true
			}
			if !strings.HasPrefix(f, "--") {
				sources = append(sources, f)
			}
		}
		if fromStage {
			continue
		}
		for _, s := range sources {
			if s != "." && !data("binary").Files[s] {
				t.Errorf("COPY names %q, which is not among the files the template requires", s)
			}
		}
	}
	if !strings.Contains(string(out), `org.opencontainers.image.revision="0123456789abcdef0123456789abcdef01234567"`) {
		t.Error("the SHA is not recorded as a label")
	}
}

func TestMissingRequiredFilesIsAUsageError(t *testing.T) {
	d := data("binary")
	delete(d.Files, "uv.lock")
	_, err := Render("", d)
	var me *MissingFilesError
	if !errors.As(err, &me) || !slices.Equal(me.Missing, []string{"uv.lock"}) || !strings.Contains(err.Error(), "missing: uv.lock") {
		t.Fatalf("err = %v", err)
	}
}

func TestACustomTemplateSeesTheData(t *testing.T) {
	out, err := Render(`FROM {{.BaseImage}}{{if has "extra.txt"}}
COPY extra.txt /{{end}}
LABEL sha={{.ShortSHA}} target={{.Target}} tag={{.PrimaryTag}}
`, data("source", "extra.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := "FROM nikolaik/python-nodejs:python3.12-nodejs22\nCOPY extra.txt /\nLABEL sha=0123456 target=source tag=python\n"
	if string(out) != want {
		t.Fatalf("got %q", out)
	}
	var te *TemplateError
	if _, err := Render(`{{.Nope}}`, data("binary")); !errors.As(err, &te) || te.Op != "rendering" {
		t.Fatalf("a template naming an unknown field: err = %v", err)
	}
	if _, err := Render(`{{if}}`, data("binary")); !errors.As(err, &te) || te.Op != "parsing" {
		t.Fatalf("a template that does not parse: err = %v", err)
	}
}
