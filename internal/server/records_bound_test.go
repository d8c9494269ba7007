package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/runtimeapi"
)

func TestMemoryKeepsTheLatestEndedBuildsAndTheirLatestLogsOnly(t *testing.T) {
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	r := newRecords(time.Hour, 24*time.Hour, func() time.Time { return now }, nil)
	for i := range keptBuilds + 50 {
		b := &build{job: &Job{ID: fmt.Sprint("b", i)}, status: runtimeapi.Success, ended: now.Add(-time.Duration(keptBuilds+50-i) * time.Second)}
		b.log.Write([]byte("output\n"))
		r.add(b)
	}
	r.add(&build{job: &Job{ID: "running"}, status: runtimeapi.Working})
	r.ended()
	if n := len(r.builds); n != keptBuilds+1 {
		t.Fatalf("memory holds %d builds, want the latest %d ended and the running one", n, keptBuilds)
	}
	if r.get("b49") != nil || r.get("b50") == nil || r.get("running") == nil {
		t.Fatal("not the oldest ended builds were dropped")
	}
	withLogs := 0
	for _, b := range r.builds {
		if !b.log.Dropped() {
			withLogs++
		}
	}
	if withLogs != keptLogs+1 || r.get(fmt.Sprint("b", keptBuilds+49)).log.Dropped() {
		t.Fatalf("%d builds keep their logs, want the latest %d and the running one", withLogs, keptLogs)
	}
}
