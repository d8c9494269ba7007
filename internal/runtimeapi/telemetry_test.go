package runtimeapi

import "testing"

func TestTelemetryReadsAsOneLineOfThePhasesThatHappened(t *testing.T) {
	tm := &Telemetry{QueuedSeconds: 0.25, BuildSeconds: 3.5, ExportSeconds: 1, CacheExportSeconds: 0.0004, StepsCached: 4, StepsTotal: 6}
	if got, want := tm.String(), "queued 250ms, build 3.5s, export/push 1s, cache export 0s; 4 of 6 steps cached"; got != want {
		t.Fatalf("%q\nwant %q", got, want)
	}
}
