package progress

import (
	"fmt"
	"io"
	"strings"
)

// GitHubError writes err as a GitHub Actions error annotation: a workflow command on w
// (standard output), its message escaped as the runner reads it.
func GitHubError(w io.Writer, err error) {
	fmt.Fprintf(w, "::error title=runtimebuild::%s\n", escapeCommand(err.Error()))
}

// escapeCommand escapes a workflow command's message as the runner reads it.
func escapeCommand(msg string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(msg)
}

// GitHubWarning writes msg as a GitHub Actions warning annotation on w (the runner reads
// workflow commands from standard error too, which keeps standard output for the result).
func GitHubWarning(w io.Writer, msg string) {
	fmt.Fprintf(w, "::warning title=runtimebuild::%s\n", escapeCommand(Escape(msg)))
}
