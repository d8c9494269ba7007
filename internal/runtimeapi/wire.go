package runtimeapi

import (
	"encoding/json"
	"strings"
)

// The wire format of the Runtime API (docs/protocol.md), spelled once: the client decodes these
// types and the local server (internal/server) encodes them, so a field renamed on one side is
// renamed on both.

// The paths of the protocol.
const (
	PathRegistryPrefix = "/registry_prefix"
	PathImageExists    = "/image_exists" // ?image=<ref>
	PathBuild          = "/build"
	PathBuildStatus    = "/build_status" // ?build_id=<id>
	PathBuildLogs      = "/build_logs"   // ?build_id=<id>, or /build_logs/<id>
	PathBuildCancel    = "/build/cancel" // ?build_id=<id>; serve's own, not every Runtime API's
)

// The request side: the fields of POST /build (a form's parts, or a JSON body's members) and the
// query parameter that names a build.
const (
	FieldContext     = "context"      // the archive: base64 text, or gzip bytes in a form's part
	FieldTargetImage = "target_image" // the image to build
	FieldTags        = "tags"         // one part per tag in a form (serve also reads tags[], tags_N); a list in JSON
	FieldTarget      = "target"       // the stage to build: serve's extension, which the hosted API ignores
	ParamBuildID     = "build_id"     // ?build_id=<id> of the status, logs and cancel paths
)

// RegistryPrefixAnswer is the answer of GET /registry_prefix: where the server pushes images.
type RegistryPrefixAnswer struct {
	RegistryPrefix string `json:"registry_prefix"`
}

// ImageExistsAnswer is the answer of GET /image_exists.
type ImageExistsAnswer struct {
	Exists bool       `json:"exists"`
	Image  *ImageInfo `json:"image"` // null when the image does not exist or the server cannot describe it
}

// ImageInfo describes an image that exists.
type ImageInfo struct {
	UploadTime string `json:"upload_time"` // RFC 3339
	SizeBytes  int64  `json:"image_size_bytes"`
}

// BuildAnswer is the 2xx answer of POST /build (historically 202).
type BuildAnswer struct {
	BuildID string `json:"build_id"`
}

// Status is the answer of GET /build_status.
type Status struct {
	BuildID string      `json:"build_id,omitempty"` // runtimebuild's server names the build; others may not
	Status  BuildStatus `json:"status"`
	Image   string      `json:"image,omitempty"`
	Digest  string      `json:"digest,omitempty"` // sha256:… of the image, when the server reports it
	Error   string      `json:"error,omitempty"`
	// Message is a note of the local server (SERVE_BUILDER=check says that nothing was built).
	Message string `json:"message,omitempty"`
	// CheckedOnly: the local server's check builder ended the build SUCCESS having built no
	// image. Older servers say so only in Message (it starts "checked only").
	CheckedOnly bool `json:"checked_only,omitempty"`
	// ElapsedSeconds, when the server says it, is the time since it accepted the build: a
	// client that re-attaches (status) shows it instead of the time since it began to follow.
	ElapsedSeconds float64 `json:"elapsed_seconds,omitempty"`
	// Telemetry is where the local server says how the build's time was spent; other servers
	// send none.
	Telemetry *Telemetry `json:"telemetry,omitempty"`
}

// Telemetry is how a build of the local server spent its time, for a client to report. Durations
// are in seconds; a phase that did not happen is left out.
type Telemetry struct {
	QueuedSeconds      float64 `json:"queued_seconds,omitempty"`       // accepted until a worker took it
	BuildSeconds       float64 `json:"build_seconds,omitempty"`        // solving the Dockerfile
	ExportSeconds      float64 `json:"export_seconds,omitempty"`       // writing or pushing the image
	CacheImportSeconds float64 `json:"cache_import_seconds,omitempty"` // reading the registry cache
	CacheExportSeconds float64 `json:"cache_export_seconds,omitempty"` // writing the registry cache
	StepsCached        int     `json:"steps_cached"`                   // steps answered from the cache
	StepsTotal         int     `json:"steps_total"`                    // all steps of the build
}

// CancelAnswer is the 200 answer of POST /build/cancel: CANCELLED, or the terminal status the
// build already had.
type CancelAnswer struct {
	BuildID string      `json:"build_id"`
	Status  BuildStatus `json:"status"`
}

// ErrorAnswer is the body of every error answer: {"detail": "..."}. runtimebuild's server sends
// a string; FastAPI servers send a list of validation errors for a 422, which decoding keeps as
// its JSON text.
type ErrorAnswer struct {
	Detail string `json:"detail"`
}

// UnmarshalJSON reads a detail of any JSON type: a string as it is, anything else as JSON text.
func (e *ErrorAnswer) UnmarshalJSON(b []byte) error {
	var raw struct {
		Detail json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	e.Detail = ""
	if len(raw.Detail) == 0 || string(raw.Detail) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw.Detail, &e.Detail); err == nil {
		return nil
	}
	var v any // compact the JSON text: it ends up on one line
	if err := json.Unmarshal(raw.Detail, &v); err != nil {
		return err
	}
	j, _ := json.Marshal(v)
	e.Detail = strings.TrimSpace(string(j))
	return nil
}
