package buildctx

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/runtimebuild/runtimebuild/internal/exitcode"
)

// secretNames are base names of files that usually hold credentials.
var secretNames = []string{
	".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ed25519*",
	".npmrc", ".netrc", ".pypirc", "*.p12", "*.pfx",
}

// secretPaths are path endings that usually hold credentials.
var secretPaths = []string{".aws/credentials", ".docker/config.json"}

// LooksSecret reports whether the name of a packed path suggests credentials.
func LooksSecret(name string) bool {
	base := path.Base(name)
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

// pemPrivateKey is how every PEM private key block begins ("-----BEGIN RSA PRIVATE KEY-----",
// "-----BEGIN OPENSSH PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----", ...).
var pemBegin = []byte("-----BEGIN ")

func beginsWithPrivateKey(file string) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, 64)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return false, err
	}
	head = bytes.TrimLeft(head[:n], " \t\r\n\ufeff")
	if !bytes.HasPrefix(head, pemBegin) {
		return false, nil
	}
	line, _, _ := bytes.Cut(head, []byte("\n"))
	return bytes.Contains(line, []byte("PRIVATE KEY-----")), nil
}

// FindSecrets returns the entries that look like secrets, by name or by content, leaving out
// the paths in allow (ALLOW_SECRETS: exact paths or path.Match globs).
func FindSecrets(entries []Entry, allow []string) ([]string, error) {
	var found []string
	for _, e := range entries {
		if e.Type != tar.TypeReg || e.Source == "" || allowed(e.Name, allow) {
			continue
		}
		secret := LooksSecret(e.Name)
		if !secret {
			var err error
			if secret, err = beginsWithPrivateKey(e.Source); err != nil {
				return nil, fmt.Errorf("reading %s: %w", e.Name, err)
			}
		}
		if secret {
			found = append(found, e.Name)
		}
	}
	return found, nil
}

func allowed(name string, allow []string) bool {
	for _, a := range allow {
		if ok, _ := path.Match(a, name); ok || a == name {
			return true
		}
	}
	return false
}

// SecretsError is the usage error for a selection holding likely secrets.
func SecretsError(found []string) error {
	return exitcode.Usagef("refusing to pack %d file(s) that look like secrets: %s; exclude them in .dockerignore, or allow them with ALLOW_SECRETS=%s",
		len(found), strings.Join(found, ", "), strings.Join(found, ","))
}
