package buildctx

import "fmt"

// PatternList names the list of patterns a PatternError is about; the caller knows which
// setting each list came from.
type PatternList int

// The pattern lists of a selection.
const (
	IgnorePatterns       PatternList = iota // the ignore file's (Rules.Ignore)
	IncludePatterns                         // Rules.Include
	AllowSecretsPatterns                    // the allow list of GuardSecrets
)

func (l PatternList) String() string {
	switch l {
	case IgnorePatterns:
		return "ignore"
	case IncludePatterns:
		return "include"
	case AllowSecretsPatterns:
		return "allow-secrets"
	}
	return fmt.Sprintf("PatternList(%d)", int(l))
}

// PatternError is a selection pattern that is malformed (Err set) or, for an include
// pattern, matches no file (Err nil). It is the caller's to say which setting was wrong.
type PatternError struct {
	List    PatternList
	File    string // the ignore file's path, for IgnorePatterns
	Pattern string // the pattern at fault; "" when the list as a whole did not compile
	Err     error  // why the pattern is malformed; nil when it matches nothing
}

func (e *PatternError) Error() string {
	what := e.List.String()
	if e.List == IgnorePatterns {
		what = e.File
		if what == "" {
			what = ".dockerignore"
		}
	}
	switch {
	case e.Err == nil:
		return fmt.Sprintf("%s pattern %q matches no file of the selection", what, e.Pattern)
	case e.Pattern == "":
		return fmt.Sprintf("%s: %v", what, e.Err)
	}
	return fmt.Sprintf("%s pattern %q: %v", what, e.Pattern, e.Err)
}

// Unwrap returns why the pattern is malformed.
func (e *PatternError) Unwrap() error { return e.Err }
