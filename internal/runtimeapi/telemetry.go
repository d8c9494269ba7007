package runtimeapi

import (
	"fmt"
	"strings"
	"time"
)

// String is the telemetry as one line for people: the phases that happened, then the steps.
func (t *Telemetry) String() string {
	var parts []string
	for _, p := range []struct {
		name    string
		seconds float64
	}{
		{"queued", t.QueuedSeconds}, {"build", t.BuildSeconds}, {"export/push", t.ExportSeconds},
		{"cache import", t.CacheImportSeconds}, {"cache export", t.CacheExportSeconds},
	} {
		if p.seconds > 0 {
			parts = append(parts, p.name+" "+time.Duration(p.seconds*float64(time.Second)).Round(time.Millisecond).String())
		}
	}
	return fmt.Sprintf("%s; %d of %d steps cached", strings.Join(parts, ", "), t.StepsCached, t.StepsTotal)
}
