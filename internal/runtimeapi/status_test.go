package runtimeapi

import (
	"slices"
	"testing"
)

func TestStatusesSayWhetherTheBuildEnded(t *testing.T) {
	for _, tt := range []struct {
		sent                string
		terminal, succeeded bool
	}{
		{"SUCCESS", true, true}, {" success ", true, true},
		{"FAILURE", true, false}, {"INTERNAL_ERROR", true, false}, {"TIMEOUT", true, false},
		{"CANCELLED", true, false}, {"EXPIRED", true, false},
		{"PENDING", false, false}, {"QUEUED", false, false}, {"WORKING", false, false}, {"RUNNING", false, false},
		{"IN_PROGRESS", false, false}, {"STATUS_UNKNOWN", false, false}, {"", false, false}, {"BAKING", false, false},
	} {
		s := ParseBuildStatus(tt.sent)
		if s.Terminal() != tt.terminal || s.Succeeded() != tt.succeeded {
			t.Errorf("%q: Terminal %v Succeeded %v, want %v %v", tt.sent, s.Terminal(), s.Succeeded(), tt.terminal, tt.succeeded)
		}
	}
	if ParseBuildStatus("") != StatusUnknown {
		t.Errorf("an empty status is %q, want STATUS_UNKNOWN", ParseBuildStatus(""))
	}
}

func TestTheLogFollowerHandsOnEachLineOnce(t *testing.T) {
	f := &logFollower{}
	steps := []struct {
		body  string
		final bool
		want  []string
	}{
		{"", false, nil},
		{"a\nb\npart", false, []string{"a", "b"}},
		{"a\nb\npartial\r\nc\n", false, []string{"partial", "c"}},
		{"a\nb\npartial\r\nc\n", false, nil},
		// The server kept only the end of the log: go on after the last line seen.
		{"c\nd\n", false, []string{"d"}},
		{"c\nd\ne\nunterminated", true, []string{"e", "unterminated"}},
	}
	for i, s := range steps {
		if got := f.feed(s.body, s.final); !slices.Equal(got, s.want) {
			t.Fatalf("look %d at %q: lines %q, want %q", i, s.body, got, s.want)
		}
	}
	if got := f.tail(); !slices.Equal(got, []string{"a", "b", "partial", "c", "d", "e", "unterminated"}) {
		t.Fatalf("tail %q", got)
	}
}

func TestOnlyTheProtocolsStatusesAreKnown(t *testing.T) {
	for _, s := range []string{"PENDING", "QUEUED", "WORKING", "RUNNING", "IN_PROGRESS", "STATUS_UNKNOWN", "SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"} {
		if !BuildStatus(s).Known() {
			t.Errorf("%s is not known", s)
		}
	}
	for _, s := range []string{"SKIPPED", "BAKING", "DONE; rm -rf", ""} {
		if BuildStatus(s).Known() {
			t.Errorf("%q is known", s)
		}
	}
}
