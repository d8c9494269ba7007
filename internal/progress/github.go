package progress

import (
	"fmt"
	"io"
	"strings"
)

// GitHubError writes err as a GitHub Actions error annotation: a workflow command on w
// (standard output), its message escaped as the runner reads it.
func GitHubError(w io.Writer, err error) {
	msg := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(err.Error())
	fmt.Fprintf(w, "::error title=runtimebuild::%s\n", msg)
}
