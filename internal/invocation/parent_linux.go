package invocation

import (
	"bytes"
	"fmt"
	"os"
)

// parentArgs0 is argv[0] of the parent process, from /proc.
func parentArgs0() string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", os.Getppid()))
	if err != nil {
		return ""
	}
	arg, _, _ := bytes.Cut(b, []byte{0})
	return string(arg)
}
