package dockerfile

import "fmt"

// AgentServerPaths are the agent server's own Dockerfiles, in the order an automatic choice
// looks for them after the root Dockerfile.
var AgentServerPaths = []string{
	"openhands-agent-server/openhands/agent_server/docker/Dockerfile",
	"openhands/agent_server/docker/Dockerfile",
}

// Origin says where a chosen Dockerfile comes from.
type Origin int

// The origins of a Dockerfile.
const (
	FromTemplate    Origin = iota // the template, rendered for the selected files
	FromRoot                      // the source's root Dockerfile, found automatically
	FromAgentServer               // one of AgentServerPaths, found automatically
	FromPath                      // the path the caller named
)

// Choice is the Dockerfile of a run.
type Choice struct {
	Path   string // slash path inside the source; empty for the template
	Origin Origin
	// Auto is true when the choice was automatic (it looked at the source's files).
	Auto bool
}

// Name is how messages name the Dockerfile.
func (c Choice) Name() string {
	if c.Path == "" {
		return "Dockerfile (generated)"
	}
	return c.Path
}

// Request is what the caller asks for: automatic, the template, or a path.
type Request struct {
	Auto     bool   // the root Dockerfile, else the agent server's, else the template
	Template bool   // the template (also what Auto means when a template file is given)
	Path     string // a slash path inside the source, when neither Auto nor Template
}

// NoSuchFileError is a requested Dockerfile path that names no regular file of the source.
type NoSuchFileError struct{ Path string }

func (e *NoSuchFileError) Error() string { return fmt.Sprintf("no such file: %s", e.Path) }

// Choose decides the Dockerfile from the request and which files the source holds
// (isFile reports a regular file at a slash path). It reads nothing itself.
func Choose(req Request, isFile func(path string) bool) (Choice, error) {
	switch {
	case req.Template:
		return Choice{Origin: FromTemplate, Auto: req.Auto}, nil
	case req.Auto:
		if isFile("Dockerfile") {
			return Choice{Path: "Dockerfile", Origin: FromRoot, Auto: true}, nil
		}
		for _, p := range AgentServerPaths {
			if isFile(p) {
				return Choice{Path: p, Origin: FromAgentServer, Auto: true}, nil
			}
		}
		return Choice{Origin: FromTemplate, Auto: true}, nil
	}
	if !isFile(req.Path) {
		return Choice{}, &NoSuchFileError{Path: req.Path}
	}
	return Choice{Path: req.Path, Origin: FromPath}, nil
}
