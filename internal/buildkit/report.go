package buildkit

import (
	"strings"
	"time"
)

// Report is what a finished solve tells beyond its success: where it ran, what it pushed, how
// long its phases took and how many of its steps came from a cache.
type Report struct {
	Daemon string // the BUILDKIT_HOST entry it ran on (Farm.Solve)
	Digest string // the image's manifest (or index) digest, when the exporter pushed or stored one

	Build       time.Duration // the steps: the solve's time less the phases below
	ExportPush  time.Duration // exporting the image and pushing it
	CacheImport time.Duration // reading registry caches
	CacheExport time.Duration // writing the registry cache
	Steps       int           // the Dockerfile's steps that ran or came from a cache
	CachedSteps int           // of those, how many came from a cache
}

// report sums the phases from the vertices BuildKit names for them.
func (t *tracker) report(total time.Duration) Report {
	var r Report
	for _, s := range t.steps {
		var took time.Duration
		if s.started != nil && s.completed != nil {
			took = s.completed.Sub(*s.started)
		}
		switch {
		case strings.HasPrefix(s.name, "importing cache manifest from "):
			r.CacheImport += took
		case strings.HasPrefix(s.name, "exporting cache to "):
			r.CacheExport += took
		case strings.HasPrefix(s.name, "exporting to "):
			r.ExportPush += took
		case isStep(s.name) && s.completed != nil:
			r.Steps++
			if s.cached {
				r.CachedSteps++
			}
		}
	}
	r.Build = max(total-r.CacheImport-r.CacheExport-r.ExportPush, 0)
	return r
}
