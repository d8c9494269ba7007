package exitcode

import (
	"errors"
	"fmt"
	"testing"
)

func TestTheCodeSurvivesWrapping(t *testing.T) {
	usage := Usagef("TARGET=%q is not valid", "fat")
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"no error", nil, OK},
		{"a plain error is a failure", errors.New("network gave up"), Failure},
		{"a usage error", usage, Usage},
		{"a usage error wrapped twice", fmt.Errorf("upload: %w", fmt.Errorf("context: %w", usage)), Usage},
		{"a usage error joined with another", errors.Join(errors.New("also this"), usage), Usage},
		{"AsUsage of a wrapped failure", AsUsage(fmt.Errorf("reading .dockerignore: %w", errors.New("bad pattern"))), Usage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.err); got != tt.want {
				t.Fatalf("Of = %d, want %d", got, tt.want)
			}
			mageErr := ForMage(tt.err)
			if tt.err == nil {
				if mageErr != nil {
					t.Fatalf("ForMage(nil) = %v", mageErr)
				}
				return
			}
			// mage's main reads the code from the error it is handed, without unwrapping.
			status, ok := mageErr.(interface{ ExitStatus() int })
			if !ok || status.ExitStatus() != tt.want || mageErr.Error() != tt.err.Error() {
				t.Fatalf("ForMage = %v (%T), want exit %d and the same message", mageErr, mageErr, tt.want)
			}
		})
	}
}
