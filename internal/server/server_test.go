package server_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/dockertest"
	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

const key = "serve-test-key-0b1c"

// member is one entry of a hand-made archive; Type 0 is a regular file.
type member struct {
	Name, Body, Link string
	Type             byte
}

// archive writes the members as a tar.gz file, exactly as given (no normalisation: hostile
// names stay hostile), and returns its path.
func archive(t *testing.T, members ...member) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, m := range members {
		h := &tar.Header{Name: m.Name, Typeflag: m.Type, Linkname: m.Link, Mode: 0o644, Size: int64(len(m.Body))}
		if m.Type == 0 {
			h.Typeflag = tar.TypeReg
		} else {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, m.Body); err != nil && h.Size > 0 {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "upload.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// local is a server on loopback with its own work directory, and a client for it.
type local struct {
	url    string
	work   string // the server's WorkDir: nothing may appear outside it
	srv    *server.Server
	client *runtimeapi.Client
}

func start(t testing.TB, opts server.Options) *local {
	t.Helper()
	base := t.TempDir()
	opts.Key = key
	opts.WorkDir = filepath.Join(base, "work")
	srv, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	c, err := runtimeapi.New(hs.URL, key, runtimeapi.Options{
		Retry: runtimeapi.Retry{Attempts: 1, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &local{url: hs.URL, work: opts.WorkDir, srv: srv, client: c}
}

// build submits the archive (multipart, base64, as the builder client sends it) and follows it.
func (l *local) build(t *testing.T, path, target string, tags ...string) (runtimeapi.Status, error) {
	_, st, err := l.buildID(t, path, target, tags...)
	return st, err
}

// buildID is build, with the build's ID.
func (l *local) buildID(t *testing.T, path, target string, tags ...string) (string, runtimeapi.Status, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := l.client.SubmitBuild(ctx, runtimeapi.BuildRequest{Archive: path, TargetImage: target, Tags: tags})
	if err != nil {
		t.Fatalf("submitting: %v", err)
	}
	st, err := l.client.WaitForBuild(ctx, id, runtimeapi.Wait{FirstPoll: 10 * time.Millisecond, Interval: 100 * time.Millisecond})
	return id, st, err
}

// post sends a multipart upload by hand, with the raw archive bytes and any extra fields.
func (l *local) post(t testing.TB, path string, fields map[string]string) (*http.Response, map[string]string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pairs []string
	for k, v := range fields {
		pairs = append(pairs, k, v)
	}
	return postBuild(t, l.url, key, data, pairs...)
}

// postBuild sends POST /build to url by hand: the fields in order (name, value, ...), then the
// raw archive bytes as the context; it decodes the JSON answer and closes its body.
func postBuild(t testing.TB, url, apiKey string, archive []byte, fields ...string) (*http.Response, map[string]string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for i := 0; i+1 < len(fields); i += 2 {
		mw.WriteField(fields[i], fields[i+1])
	}
	part, _ := mw.CreateFormFile("context", "image.tar.gz")
	part.Write(archive)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, url+"/build", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-API-Key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]string{}
	json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

// get sends a GET with the key; the caller closes the body.
func (l *local) get(t testing.TB, pathAndQuery string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, l.url+pathAndQuery, nil)
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// imageExists asks /image_exists, as the builder client does before it uploads.
func (l *local) imageExists(t *testing.T, image string) map[string]any {
	t.Helper()
	resp := l.get(t, "/image_exists?image="+image)
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /image_exists: %d %v", resp.StatusCode, err)
	}
	return out
}

// buildLogs fetches /build_logs of a build.
func (l *local) buildLogs(t testing.TB, id string) string {
	t.Helper()
	resp := l.get(t, "/build_logs?build_id="+id)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /build_logs: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return string(b)
}

// leftovers lists what lies below dir (relative paths), for "nothing written" assertions.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			found = append(found, rel)
		}
		return nil
	})
	return found
}

func uniqueImage(t *testing.T) string {
	b := make([]byte, 4)
	rand.Read(b)
	image := "localhost/runtime/serve-test:" + hex.EncodeToString(b)
	t.Cleanup(func() {
		dockertest.RemoveImages(image, image+"-base", image+"-extra")
	})
	return image
}

func inspectLabel(t *testing.T, image, label string) string {
	t.Helper()
	img, err := dockertest.Engine(t).Inspect(context.Background(), image)
	if err != nil {
		t.Fatal(err)
	}
	return img.Labels[label]
}

const twoStages = "FROM scratch AS base\nCOPY hello.txt /\nLABEL stage=base\nFROM base AS final\nLABEL stage=final\n"

func TestTheDockerBuilderBuildsAContextThatDockerCanInspect(t *testing.T) {
	dockertest.Require(t)
	l := start(t, server.Options{Builder: engineBuilder(t)})
	image := uniqueImage(t)
	ctx := archive(t, member{Name: "Dockerfile", Body: twoStages}, member{Name: "hello.txt", Body: "hi\n"})

	id, st, err := l.buildID(t, ctx, image, image+"-extra")
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if st.Status != "SUCCESS" || st.Image != image {
		t.Fatalf("status %+v, want SUCCESS with image %s", st, image)
	}
	if got := inspectLabel(t, image, "stage"); got != "final" {
		t.Fatalf("%s has label stage=%q, want the last stage (final)", image, got)
	}
	if got := inspectLabel(t, image+"-extra", "stage"); got != "final" {
		t.Fatalf("the extra tag %s-extra has stage=%q, want final", image, got)
	}
	if info := l.imageExists(t, image); info["exists"] != true || info["image"] == nil {
		t.Fatalf("/image_exists of the built image: %v", info)
	} else if img := info["image"].(map[string]any); img["upload_time"] == "" || img["image_size_bytes"] == nil {
		t.Fatalf("/image_exists does not describe the image: %v", img)
	}
	if info := l.imageExists(t, image+"-never-built"); info["exists"] != false {
		t.Fatalf("/image_exists of an image never built: %v", info)
	}
	if logs := l.buildLogs(t, id); !strings.Contains(logs, "COPY hello.txt") {
		t.Fatalf("/build_logs lacks the engine's output:\n%s", logs)
	}

	// A client naming a stage gets that stage.
	resp, out := l.post(t, ctx, map[string]string{"target_image": image + "-base", "target": "base"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /build: %d %v", resp.StatusCode, out)
	}
	st, err = l.client.WaitForBuild(context.Background(), out["build_id"], runtimeapi.Wait{FirstPoll: 10 * time.Millisecond, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got := inspectLabel(t, image+"-base", "stage"); got != "base" {
		t.Fatalf("target=base built stage=%q", got)
	}
	if left := leftovers(t, l.work); len(left) > 1 { // the server's own directory, empty
		t.Fatalf("build files left behind: %v", left)
	}
}

func TestAFailingDockerfileEndsInFailureWithTheEnginesMessage(t *testing.T) {
	dockertest.Require(t)
	l := start(t, server.Options{Builder: engineBuilder(t)})
	ctx := archive(t, member{Name: "Dockerfile", Body: "FROM scratch\nCOPY nope.txt /\n"})
	st, err := l.build(t, ctx, uniqueImage(t))
	var failed *runtimeapi.BuildFailedError
	if !errors.As(err, &failed) || failed.Status != "FAILURE" || st.Status != "FAILURE" {
		t.Fatalf("err %v status %+v, want FAILURE", err, st)
	}
	if !strings.Contains(failed.Reason, "nope.txt") {
		t.Fatalf("the reason %q does not carry the engine's message about nope.txt", failed.Reason)
	}
	if strings.Contains(failed.Reason, "DEPRECATED") {
		t.Fatalf("the reason %q leads with the CLI's deprecation notice, not the failure", failed.Reason)
	}
}

func TestTheDockerBuilderLoadsAndTagsAnImageArchive(t *testing.T) {
	dockertest.Require(t)
	// An image made by the engine itself, saved as `docker save` writes it.
	src := uniqueImage(t)
	var ctxTar bytes.Buffer
	zw := gzip.NewWriter(&ctxTar)
	writeTar(t, zw, map[string]string{"Dockerfile": "FROM scratch\nCOPY f /\nLABEL made=here\n", "f": "f"})
	zw.Close()
	dockertest.BuildImage(t, &ctxTar, src)
	var image bytes.Buffer
	zw = gzip.NewWriter(&image)
	if err := dockertest.Engine(t).Save(context.Background(), src, zw); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	saved := filepath.Join(t.TempDir(), "image.tar.gz")
	os.WriteFile(saved, image.Bytes(), 0o644)
	l := start(t, server.Options{Builder: engineBuilder(t)})
	target := uniqueImage(t)
	resp, out := l.post(t, saved, map[string]string{"target_image": target, "tags_0": target + "-extra"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /build: %d %v", resp.StatusCode, out)
	}
	if _, err := l.client.WaitForBuild(context.Background(), out["build_id"], runtimeapi.Wait{FirstPoll: 10 * time.Millisecond, Interval: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{target, target + "-extra"} {
		if got := inspectLabel(t, img, "made"); got != "here" {
			t.Fatalf("%s: label made=%q, want the loaded image", img, got)
		}
	}
}

// noDocker makes sure no docker command can be found for the rest of the test.
func noDocker(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := exec.LookPath("docker"); err == nil {
		t.Fatal("docker is still on PATH")
	}
}

func TestNewRefusesOptionsThatAcceptNoRequest(t *testing.T) {
	if _, err := server.New(server.Options{Builder: server.CheckBuilder{}, WorkDir: t.TempDir()}); !errors.Is(err, server.ErrNoKey) {
		t.Fatalf("neither Key nor NoAuth: err = %v, want ErrNoKey", err)
	}
}

func TestTheCheckBuilderNamesItselfAsTheCallerSays(t *testing.T) {
	for _, tt := range []struct {
		b    server.CheckBuilder
		want string
	}{
		{server.CheckBuilder{}, "checked only: the check builder builds nothing"},
		{server.CheckBuilder{Name: "SERVE_BUILDER=check"}, "checked only: SERVE_BUILDER=check builds nothing"},
	} {
		if got := tt.b.Note(); got != tt.want {
			t.Errorf("Note() = %q, want %q", got, tt.want)
		}
	}
}

func TestTheCheckBuilderNeedsNoEngine(t *testing.T) {
	noDocker(t)
	l := start(t, server.Options{Builder: server.CheckBuilder{}})

	good := archive(t, member{Name: "Dockerfile", Body: twoStages}, member{Name: "hello.txt", Body: "hi\n"})
	st, err := l.build(t, good, "localhost/runtime/app:1")
	if err != nil || st.Status != "SUCCESS" || !strings.Contains(st.Message, "builds nothing") {
		t.Fatalf("a sound context: status %+v, err %v; want SUCCESS saying nothing was built", st, err)
	}

	// As `tar -C dir -czf context.tar.gz .` writes it: the root "./" first, every name under "./".
	dotted := archive(t, member{Name: "./", Type: tar.TypeDir}, member{Name: "./Dockerfile", Body: twoStages}, member{Name: "./hello.txt", Body: "hi\n"})
	if st, err := l.build(t, dotted, "localhost/runtime/app:dotted"); err != nil || st.Status != "SUCCESS" {
		t.Fatalf("a context made by tar -C dir .: status %+v, err %v", st, err)
	}

	bad := archive(t, member{Name: "Dockerfile", Body: "FROM scratch\n\nCOPY missing.txt /\n"})
	_, err = l.build(t, bad, "localhost/runtime/app:2")
	var failed *runtimeapi.BuildFailedError
	if !errors.As(err, &failed) || !strings.Contains(failed.Reason, "Dockerfile:3: COPY source missing.txt is not in the build context") {
		t.Fatalf("a context missing a COPY source: %v", err)
	}

	image := archive(t, member{Name: "manifest.json", Body: `[{"Config":"c.json","RepoTags":["a/b:c"],"Layers":["l/layer.tar"]}]`}, member{Name: "c.json", Body: "{}"})
	_, err = l.build(t, image, "localhost/runtime/app:3")
	if !errors.As(err, &failed) || !strings.Contains(failed.Reason, "l/layer.tar") {
		t.Fatalf("an image archive missing a layer: %v", err)
	}
}

func TestHostileArchivesAreRefusedAndNothingIsWrittenOutside(t *testing.T) {
	df := member{Name: "Dockerfile", Body: "FROM scratch\n"}
	zeros := member{Name: "zeros.bin", Body: strings.Repeat("\x00", 8<<20)} // ~8 KiB once compressed
	noise := make([]byte, 3<<19)                                            // 1.5 MiB that gzip cannot shrink
	rand.Read(noise)
	tests := []struct {
		name    string
		members []member
		code    int
		detail  string
	}{
		{"a name climbing out with ..", []member{df, {Name: "../../escaped.txt", Body: "x"}}, 422, "leaves the root"},
		{"a name hidden behind a directory", []member{df, {Name: "sub/../../escaped.txt", Body: "x"}}, 422, "leaves the root"},
		{"an absolute name", []member{df, {Name: "/tmp/escaped.txt", Body: "x"}}, 422, "is absolute"},
		{"a link to an absolute path", []member{df, {Name: "etc", Type: tar.TypeSymlink, Link: "/etc"}}, 422, "outside the archive"},
		{"a link climbing out", []member{df, {Name: "a/up", Type: tar.TypeSymlink, Link: "../../.."}}, 422, "outside the archive"},
		{"a hard link to outside", []member{df, {Name: "h", Type: tar.TypeLink, Link: "../escaped.txt"}}, 422, "hard link"},
		{"a device node", []member{df, {Name: "dev", Type: tar.TypeChar}}, 422, "neither file"},
		{"a gzip bomb beyond the size limit", []member{df, zeros}, 413, "larger than the server accepts"},
		{"an upload beyond the size limit", []member{df, {Name: "noise.bin", Body: string(noise)}}, 413, "larger than the server accepts"},
		{"no Dockerfile and no manifest", []member{{Name: "README", Body: "x"}}, 422, "neither a Dockerfile nor a manifest.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := start(t, server.Options{Builder: server.CheckBuilder{}, MaxUpload: 1 << 20})
			resp, out := l.post(t, archive(t, tt.members...), map[string]string{"target_image": "localhost/runtime/x:1"})
			if resp.StatusCode != tt.code || !strings.Contains(out["detail"], tt.detail) {
				t.Fatalf("answer %d %q, want %d with %q", resp.StatusCode, out["detail"], tt.code, tt.detail)
			}
			parent := filepath.Dir(l.work)
			if left := leftovers(t, parent); len(left) != 2 || left[0] != "work" { // work/<server dir>, empty
				t.Fatalf("written around the server's work directory: %v", left)
			}
		})
	}
}

func TestALinkChainThatEscapesOnlyOnDiskIsRefusedAndWritesNothingOutside(t *testing.T) {
	// Each link looks inside by its name ("a/b" -> ".." is the root), but a/b/c -> ".." is the
	// root's parent on disk: links are resolved as they will be on disk, and the upload refused.
	l := start(t, server.Options{Builder: server.CheckBuilder{}})
	chain := archive(t,
		member{Name: "Dockerfile", Body: "FROM scratch\n"},
		member{Name: "a/b", Type: tar.TypeSymlink, Link: ".."},
		member{Name: "a/b/c", Type: tar.TypeSymlink, Link: ".."},
		member{Name: "a/b/c/escaped.txt", Body: "written outside"},
	)
	resp, out := l.post(t, chain, map[string]string{"target_image": "localhost/runtime/chain:1"})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(out["detail"], "outside the archive") {
		t.Fatalf("answer %d %q, want 422 refusing the member that resolves outside", resp.StatusCode, out["detail"])
	}
	root := filepath.Dir(filepath.Dir(l.work))
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "escaped.txt" {
			t.Errorf("written through the link chain: %s", p)
		}
		return nil
	})
}

// blocking builds until the server stops it.
type blocking struct{ started chan string }

func (b blocking) Build(ctx context.Context, job *server.Job, _ io.Writer) (string, error) {
	b.started <- job.ID
	<-ctx.Done()
	return "", ctx.Err()
}

func (blocking) ImageExists(context.Context, string) (bool, error) { return false, nil }

func TestAFullQueueAnswers429WithRetryAfter(t *testing.T) {
	b := blocking{started: make(chan string, 4)}
	l := start(t, server.Options{Builder: b, Workers: 1, QueueSize: 1})
	ctx := archive(t, member{Name: "Dockerfile", Body: "FROM scratch\n"})
	fields := map[string]string{"target_image": "localhost/runtime/q:1"}

	resp, first := l.post(t, ctx, fields)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first build: %d", resp.StatusCode)
	}
	select {
	case <-b.started: // the one worker is busy now
	case <-time.After(10 * time.Second):
		t.Fatal("the first build did not start within 10s")
	}
	resp, second := l.post(t, ctx, fields)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("second build (queued): %d", resp.StatusCode)
	}
	resp, out := l.post(t, ctx, fields)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(out["detail"], "queue is full") {
		t.Fatalf("third build: %d Retry-After %q %v, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), out)
	}

	// Stopping the server ends the running and the queued build CANCELLED, and removes their files.
	if err := l.srv.Close(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{first["build_id"], second["build_id"]} {
		st, err := l.client.BuildStatus(context.Background(), id)
		if err != nil || st.Status != "CANCELLED" || st.Error == "" {
			t.Fatalf("build %s after Close: %+v, %v; want CANCELLED with a reason", id, st, err)
		}
	}
	if left := leftovers(t, l.work); len(left) != 0 {
		t.Fatalf("build files outlive Close: %v", left)
	}
}

func TestKeysAreCheckedAndErrorsAreJSONDetail(t *testing.T) {
	l := start(t, server.Options{Builder: server.CheckBuilder{}})
	for _, k := range []string{"", "wrong"} {
		req, _ := http.NewRequest(http.MethodGet, l.url+"/registry_prefix", nil)
		if k != "" {
			req.Header.Set("X-API-Key", k)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]string
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || out["detail"] == "" || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("key %q: %d %v", k, resp.StatusCode, out)
		}
	}
	prefix, err := l.client.RegistryPrefix(context.Background())
	if err != nil || prefix != "localhost/runtime" {
		t.Fatalf("registry prefix %q, %v", prefix, err)
	}
	if _, err := l.client.BuildStatus(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("an unknown build: %v", err)
	}
}

func TestARestartedServerRemovesWhatADeadOneLeft(t *testing.T) {
	work := filepath.Join(t.TempDir(), "work")
	os.Mkdir(work, 0o700) // private: the only kind of directory a server cleans up in
	// A process that has ended: its ID names the directory it would have left.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(work, strconv.Itoa(dead.Process.Pid)+"-123", "build-1")
	os.MkdirAll(left, 0o755)
	os.WriteFile(filepath.Join(left, "upload.tar.gz"), []byte("half-written"), 0o600)
	alive := filepath.Join(work, strconv.Itoa(os.Getpid())+"-456") // a running server's: kept
	os.MkdirAll(alive, 0o755)

	srv, err := server.New(server.Options{Key: key, Builder: server.CheckBuilder{}, WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := os.Stat(filepath.Dir(left)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the dead server's files are still there: %v", err)
	}
	if _, err := os.Stat(alive); err != nil {
		t.Fatalf("a live server's directory was removed: %v", err)
	}
}
