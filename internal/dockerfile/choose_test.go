package dockerfile

import "testing"

func TestChooseFollowsTheOrderOfAnAutomaticChoice(t *testing.T) {
	files := func(names ...string) func(string) bool {
		return func(p string) bool {
			for _, n := range names {
				if n == p {
					return true
				}
			}
			return false
		}
	}
	for _, tt := range []struct {
		name  string
		req   Request
		files []string
		want  Choice
		err   bool
	}{
		{"the root Dockerfile first", Request{Auto: true}, []string{"Dockerfile", AgentServerPaths[0]}, Choice{Path: "Dockerfile", Origin: FromRoot, Auto: true}, false},
		{"then the agent server's, in order", Request{Auto: true}, []string{AgentServerPaths[1], AgentServerPaths[0]}, Choice{Path: AgentServerPaths[0], Origin: FromAgentServer, Auto: true}, false},
		{"else the template", Request{Auto: true}, nil, Choice{Origin: FromTemplate, Auto: true}, false},
		{"a template file wins over files", Request{Auto: true, Template: true}, []string{"Dockerfile"}, Choice{Origin: FromTemplate, Auto: true}, false},
		{"a path that exists", Request{Path: "build/Dockerfile"}, []string{"build/Dockerfile"}, Choice{Path: "build/Dockerfile", Origin: FromPath}, false},
		{"a path that does not", Request{Path: "nope"}, nil, Choice{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Choose(tt.req, files(tt.files...))
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("Choose = %+v, %v; want %+v (error %v)", got, err, tt.want, tt.err)
			}
		})
	}
}
