package buildctx

import (
	"archive/tar"
	"fmt"
	"path"
	"strings"

	"github.com/moby/patternmatcher"
)

// secretNames are base names of files that usually hold credentials, matched without regard
// to case. *.pem, *.crt and *.key are not here: they flag only when their content holds a
// private key (the content scan of Write), since most of them are public certificates.
var secretNames = []string{
	".env", ".env.*", "*.env", "kubeconfig", "*.kubeconfig", ".dockerconfigjson", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
	".npmrc", ".netrc", "_netrc", ".pypirc", ".pgpass", ".htpasswd", ".dockercfg", ".git-credentials",
	"*.tfstate", "*.tfstate.backup", "*.p12", "*.pfx", "*.ppk", "*.jks", "*.keystore", "*.kdbx",
}

// secretPaths are path endings that usually hold credentials, matched without regard to case.
var secretPaths = []string{".aws/credentials", ".docker/config.json", ".kube/config"}

// looksSecret reports whether the name of a packed path suggests credentials. Public keys
// (*.pub) never do.
func looksSecret(name string) bool {
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

// SecretsError is a selection holding likely secrets. Its message names them; the caller adds
// how to exclude or allow them.
type SecretsError struct {
	Findings []Finding
}

func (e *SecretsError) Error() string {
	where := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		where[i] = f.String()
	}
	return fmt.Sprintf("refusing to pack %d file(s) that look like secrets: %s", len(e.Files()), strings.Join(where, ", "))
}

// Files are the files of the findings, each once, in the order of the findings.
func (e *SecretsError) Files() []string {
	var files []string
	seen := map[string]bool{}
	for _, f := range e.Findings {
		if !seen[f.File] {
			seen[f.File] = true
			files = append(files, f.File)
		}
	}
	return files
}

// GuardSecrets applies the secrets guard to the names of the entries and prepares their content
// scan: it returns the entries that the allow list allows marked (Write then leaves their
// content alone), and the allow patterns that match no entry. Names that look like secrets make
// a *SecretsError; a malformed pattern a *PatternError. allow holds .dockerignore patterns
// (`**`, directories, `!` exceptions).
func GuardSecrets(entries []Entry, allow []string) (out []Entry, unmatched []string, err error) {
	out = append([]Entry(nil), entries...)
	var all *patternmatcher.PatternMatcher
	singles := make([]*patternmatcher.PatternMatcher, len(allow))
	used := make([]bool, len(allow))
	if len(allow) > 0 {
		if all, err = patternmatcher.New(allow); err != nil {
			return nil, nil, &PatternError{List: AllowSecretsPatterns, Err: err}
		}
		for i, p := range allow {
			if strings.HasPrefix(p, "!") {
				used[i] = true // an exception narrows the others; it need not match on its own
				continue
			}
			if singles[i], err = patternmatcher.New([]string{p}); err != nil {
				return nil, nil, &PatternError{List: AllowSecretsPatterns, Pattern: p, Err: err}
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
		if e.Type == tar.TypeReg && looksSecret(e.Name) {
			found = append(found, Finding{File: e.Name, Rule: "file-name"})
		}
	}
	for i, p := range allow {
		if !used[i] {
			unmatched = append(unmatched, p)
		}
	}
	if len(found) > 0 {
		return nil, unmatched, &SecretsError{Findings: found}
	}
	return out, unmatched, nil
}
