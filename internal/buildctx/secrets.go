package buildctx

import (
	"archive/tar"
	"fmt"
	"path"
	"strings"

	"github.com/moby/patternmatcher"

	"github.com/runtimebuild/runtimebuild/internal/exitcode"
)

// secretNames are base names of files that usually hold credentials, matched without regard
// to case. *.pem, *.crt and *.key are not here: they flag only when their content holds a
// private key (the content scan of Pack), since most of them are public certificates.
var secretNames = []string{
	".env", ".env.*", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
	".npmrc", ".netrc", "_netrc", ".pypirc", ".pgpass", ".htpasswd", ".dockercfg", ".git-credentials",
	"*.tfstate", "*.tfstate.backup", "*.p12", "*.pfx", "*.ppk", "*.jks", "*.keystore", "*.kdbx",
}

// secretPaths are path endings that usually hold credentials, matched without regard to case.
var secretPaths = []string{".aws/credentials", ".docker/config.json", ".kube/config"}

// LooksSecret reports whether the name of a packed path suggests credentials. Public keys
// (*.pub) never do.
func LooksSecret(name string) bool {
	name = strings.ToLower(name)
	base := path.Base(name)
	if strings.HasSuffix(base, ".pub") {
		return false
	}
	for _, p := range secretNames {
		if ok, _ := path.Match(p, base); ok {
			return true
		}
	}
	for _, p := range secretPaths {
		if name == p || strings.HasSuffix(name, "/"+p) {
			return true
		}
	}
	return false
}

// Finding is a packed file that looks like it holds a secret. It never carries the secret.
type Finding struct {
	File string
	Line int    // 1-based; 0 when the name alone gave it away
	Rule string // "file-name", "private-key", "aws-access-key-id", ...
}

// String is "file:line (rule)", or the file alone when its name gave it away.
func (f Finding) String() string {
	if f.Line == 0 {
		return f.File
	}
	return fmt.Sprintf("%s:%d (%s)", f.File, f.Line, f.Rule)
}

// SecretsError is a selection holding likely secrets.
type SecretsError struct {
	Findings []Finding
}

func (e *SecretsError) Error() string {
	var where []string
	var files []string
	seen := map[string]bool{}
	for _, f := range e.Findings {
		where = append(where, f.String())
		if !seen[f.File] {
			seen[f.File] = true
			files = append(files, f.File)
		}
	}
	return fmt.Sprintf("refusing to pack %d file(s) that look like secrets: %s; exclude them in .dockerignore, or allow them with ALLOW_SECRETS=%s",
		len(files), strings.Join(where, ", "), strings.Join(files, ","))
}

// GuardSecrets applies the secrets guard to the names of the entries and prepares their content
// scan: it returns the entries with those ALLOW_SECRETS allows marked (Pack then leaves their
// content alone), and a warning for each allow pattern that matches no entry. Names that look
// like secrets make a *SecretsError (a usage error); so does a malformed pattern. allow holds
// .dockerignore patterns (`**`, directories, `!` exceptions).
func GuardSecrets(entries []Entry, allow []string) (out []Entry, warnings []string, err error) {
	out = append([]Entry(nil), entries...)
	var all *patternmatcher.PatternMatcher
	singles := make([]*patternmatcher.PatternMatcher, len(allow))
	used := make([]bool, len(allow))
	if len(allow) > 0 {
		if all, err = patternmatcher.New(allow); err != nil {
			return nil, nil, exitcode.Usagef("ALLOW_SECRETS: %v", err)
		}
		for i, p := range allow {
			if strings.HasPrefix(p, "!") {
				used[i] = true // an exception narrows the others; it need not match on its own
				continue
			}
			if singles[i], err = patternmatcher.New([]string{p}); err != nil {
				return nil, nil, exitcode.Usagef("ALLOW_SECRETS pattern %q: %v", p, err)
			}
		}
	}
	var found []Finding
	for i := range out {
		e := &out[i]
		if e.Type != tar.TypeReg && e.Type != tar.TypeSymlink {
			continue
		}
		for j, m := range singles {
			if m != nil && !used[j] {
				used[j], _ = m.MatchesOrParentMatches(e.Name)
			}
		}
		if all != nil {
			if ok, _ := all.MatchesOrParentMatches(e.Name); ok {
				e.AllowSecrets = true
				continue
			}
		}
		if e.Type == tar.TypeReg && LooksSecret(e.Name) {
			found = append(found, Finding{File: e.Name, Rule: "file-name"})
		}
	}
	for i, p := range allow {
		if !used[i] {
			warnings = append(warnings, fmt.Sprintf("ALLOW_SECRETS pattern %q matches no packed file", p))
		}
	}
	if len(found) > 0 {
		return nil, warnings, exitcode.AsUsage(&SecretsError{Findings: found})
	}
	return out, warnings, nil
}
