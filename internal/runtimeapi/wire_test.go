package runtimeapi_test

import (
	"encoding/json"
	"testing"

	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

func TestErrorAnswerReadsEveryDetail(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"a string is kept as it is", `{"detail": "no such build"}`, "no such build"},
		{"a FastAPI validation list becomes one line of JSON", "{\"detail\": [\n {\"loc\": [\"query\", \"image\"],\n \"msg\": \"field required\"}]}", `[{"loc":["query","image"],"msg":"field required"}]`},
		{"null is no detail", `{"detail": null}`, ""},
		{"no detail is no detail", `{"error": "x"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e runtimeapi.ErrorAnswer
			if err := json.Unmarshal([]byte(tc.body), &e); err != nil {
				t.Fatal(err)
			}
			if e.Detail != tc.want {
				t.Errorf("detail %q, want %q", e.Detail, tc.want)
			}
		})
	}
}

func TestStatusWireForm(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   runtimeapi.Status
		want string
	}{
		{"a build going on says only its status", runtimeapi.Status{BuildID: "b1", Status: runtimeapi.Working},
			`{"build_id":"b1","status":"WORKING"}`},
		{"telemetry keeps zero step counts", runtimeapi.Status{Status: runtimeapi.Success, Image: "r/i:t", Telemetry: &runtimeapi.Telemetry{BuildSeconds: 1.5}},
			`{"status":"SUCCESS","image":"r/i:t","telemetry":{"build_seconds":1.5,"steps_cached":0,"steps_total":0}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("got  %s\nwant %s", b, tc.want)
			}
			var back runtimeapi.Status
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if again, _ := json.Marshal(back); string(again) != tc.want {
				t.Errorf("round trip gave %s", again)
			}
		})
	}
}
