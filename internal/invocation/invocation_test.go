package invocation

import "testing"

func TestTheHintNamesTheCommandTheUserRan(t *testing.T) {
	cache := "/home/u/.magefile"
	inCache := cache + "/0123abcd"
	for _, tt := range []struct {
		name string
		p    Process
		want string
	}{
		{"go run magefile.go", Process{Entry: "go run magefile.go", Executable: inCache, MageCache: cache, Args: []string{"upload"}}, "go run magefile.go status b1"},
		{"go tool mage", Process{Executable: inCache, MageCache: cache, GoCache: "/home/u/.cache/go-build",
			Parent: "/home/u/.cache/go-build/tool/5e/mage", Args: []string{"all"}}, "go tool mage status b1"},
		{"mage where the parent is unknown", Process{Executable: inCache, MageCache: cache, Args: []string{"all"}}, "go tool mage status b1"},
		{"an installed mage", Process{Executable: inCache, MageCache: cache, GoCache: "/home/u/.cache/go-build",
			Parent: "/home/u/go/bin/mage", Args: []string{"-v", "all"}}, "mage status b1"},
		{"the compiled binary by its path", Process{Args0: "./bin/runtimebuild", Executable: "/src/bin/runtimebuild", MageCache: cache, Args: []string{"upload"}}, "./bin/runtimebuild status b1"},
		{"the compiled binary on PATH", Process{Args0: "runtimebuild", Executable: "/usr/local/bin/runtimebuild", MageCache: cache, Args: []string{"upload"}}, "runtimebuild status b1"},
		{"an importing module's namespace", Process{Executable: inCache, MageCache: cache, Args: []string{"-v", "rb:all"}}, "go tool mage rb:status b1"},
		{"a namespace typed in any case", Process{Args0: "./ci", Executable: "/x/ci", MageCache: cache, Args: []string{"rb:Upload"}}, "./ci rb:status b1"},
		{"another repository's own targets are not a namespace", Process{Args0: "./ci", Executable: "/x/ci", MageCache: cache, Args: []string{"docs:build", "all"}}, "./ci status b1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Command("status", "b1"); got != tt.want {
				t.Fatalf("Command = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTheHintQuotesAnArgumentOnlyWhenAShellWouldReadItOtherwise(t *testing.T) {
	p := Process{Args0: "./bin/runtimebuild", Executable: "/src/bin/runtimebuild", Args: []string{"upload"}}
	for _, tt := range []struct{ arg, want string }{
		{"0123456789abcdef01234567", "0123456789abcdef01234567"},
		{"build-1.2_3:4", "build-1.2_3:4"},
		{"x; touch /tmp/PWNED #\u202e", "'x; touch /tmp/PWNED #\u202e'"},
		{"it's", `'it'\''s'`},
		{"$(id)", "'$(id)'"},
		{"a b", "'a b'"},
		{"", "''"},
	} {
		if got, want := p.Command("status", tt.arg), "./bin/runtimebuild status "+tt.want; got != want {
			t.Errorf("Command(status, %q) = %q, want %q", tt.arg, got, want)
		}
	}
}
