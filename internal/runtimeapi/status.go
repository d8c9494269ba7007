package runtimeapi

import "strings"

// BuildStatus is the status of a build as /build_status reports it: those of Google Cloud Build.
type BuildStatus string

// The statuses of the protocol. Any other value (or none) means the build goes on.
const (
	Pending       BuildStatus = "PENDING"
	Queued        BuildStatus = "QUEUED"
	Working       BuildStatus = "WORKING"
	Running       BuildStatus = "RUNNING"
	InProgress    BuildStatus = "IN_PROGRESS"
	StatusUnknown BuildStatus = "STATUS_UNKNOWN"

	Success       BuildStatus = "SUCCESS"
	Failure       BuildStatus = "FAILURE"
	InternalError BuildStatus = "INTERNAL_ERROR"
	Timeout       BuildStatus = "TIMEOUT"
	Cancelled     BuildStatus = "CANCELLED"
	Expired       BuildStatus = "EXPIRED"

	// Skipped is not sent by servers: this tool records it when /image_exists made the build needless.
	Skipped BuildStatus = "SKIPPED"
)

// ParseBuildStatus normalises what a server sent: upper case, trimmed; empty is StatusUnknown.
func ParseBuildStatus(s string) BuildStatus {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" {
		return StatusUnknown
	}
	return BuildStatus(s)
}

// Terminal reports whether the build has ended, well or badly.
func (s BuildStatus) Terminal() bool {
	switch s {
	case Success, Failure, InternalError, Timeout, Cancelled, Expired:
		return true
	}
	return false
}

// Known reports whether s is a status of the protocol (Skipped, this tool's own, is not).
func (s BuildStatus) Known() bool {
	switch s {
	case Pending, Queued, Working, Running, InProgress, StatusUnknown:
		return true
	}
	return s.Terminal()
}

// Succeeded reports whether the build ended well.
func (s BuildStatus) Succeeded() bool { return s == Success }

// String is the status as servers spell it.
func (s BuildStatus) String() string { return string(s) }
