package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// cancel sends POST /build/cancel and decodes the answer.
func (l *local) cancel(t *testing.T, id string) (int, runtimeapi.CancelAnswer) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, l.url+runtimeapi.PathBuildCancel+"?build_id="+id, nil)
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out runtimeapi.CancelAnswer
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// status reads /build_status of id.
func (l *local) status(t *testing.T, id string) runtimeapi.Status {
	t.Helper()
	resp := l.get(t, runtimeapi.PathBuildStatus+"?build_id="+id)
	defer resp.Body.Close()
	var st runtimeapi.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCancelStopsARunningOrQueuedBuildAndLeavesAnEndedOneAsItIs(t *testing.T) {
	b := blocking{started: make(chan string, 2)}
	l := start(t, server.Options{Builder: b, Workers: 1})
	ctx := archive(t, member{Name: "Dockerfile", Body: "FROM scratch\n"})
	_, running := l.post(t, ctx, map[string]string{"target_image": "localhost/runtime/c:1"})
	<-b.started
	_, queued := l.post(t, ctx, map[string]string{"target_image": "localhost/runtime/c:2"})
	if st := l.status(t, queued["build_id"]); st.Status != runtimeapi.Queued {
		t.Fatalf("the second build with one worker busy: %s, want QUEUED", st.Status)
	}

	code, answer := l.cancel(t, queued["build_id"])
	if code != http.StatusOK || answer.Status != runtimeapi.Cancelled || answer.BuildID != queued["build_id"] {
		t.Fatalf("cancelling a queued build: %d %+v, want 200 CANCELLED", code, answer)
	}
	code, answer = l.cancel(t, running["build_id"])
	if code != http.StatusOK || answer.Status != runtimeapi.Cancelled {
		t.Fatalf("cancelling a running build: %d %+v, want 200 CANCELLED", code, answer)
	}
	if st := l.status(t, running["build_id"]); st.Status != runtimeapi.Cancelled || st.Error == "" {
		t.Fatalf("/build_status after cancel: %+v, want CANCELLED with a reason", st)
	}
	if leftover := leftovers(t, l.work); len(leftover) > 1 { // the server's own directory only
		t.Fatalf("cancelled builds left files: %v", leftover)
	}
	code, answer = l.cancel(t, running["build_id"])
	if code != http.StatusOK || answer.Status != runtimeapi.Cancelled {
		t.Fatalf("cancelling it again: %d %+v, want 200 CANCELLED", code, answer)
	}
	select {
	case id := <-b.started:
		t.Fatalf("the build cancelled while queued started anyway (%s)", id)
	default:
	}
	if code, _ := l.cancel(t, "no-such-build"); code != http.StatusNotFound {
		t.Fatalf("cancelling an unknown build: %d, want 404", code)
	}
}

func TestCancellingABuildThatEndedAnswersItsStatus(t *testing.T) {
	l := start(t, server.Options{Builder: &scripted{}})
	id, st, err := l.buildID(t, archive(t, member{Name: "Dockerfile", Body: "FROM scratch\n"}), "localhost/runtime/done:1")
	if err != nil || st.Status != runtimeapi.Success {
		t.Fatalf("%+v %v", st, err)
	}
	if code, answer := l.cancel(t, id); code != http.StatusOK || answer.Status != runtimeapi.Success {
		t.Fatalf("cancelling a finished build: %d %+v, want 200 SUCCESS", code, answer)
	}
}
