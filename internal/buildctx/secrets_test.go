package buildctx

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runtimebuild/runtimebuild/internal/gittest"
)

func TestLooksSecret(t *testing.T) {
	for _, name := range []string{".env", ".ENV", "sub/.env.production", "home/id_rsa", "id_ecdsa", "id_ed25519_sk",
		".npmrc", "x/.netrc", ".pypirc", "a.p12", "b.pfx", ".aws/credentials", "home/u/.docker/config.json", "u/.kube/config",
		".git-credentials", ".pgpass", ".htpasswd", ".dockercfg", "infra/terraform.tfstate", "key.ppk", "keystore.jks", "Store.JKS"} {
		if !looksSecret(name) {
			t.Errorf("looksSecret(%q) = false", name)
		}
	}
	for _, name := range []string{"environment.py", "keys.py", "docs/.envrc.md", "config.json", "aws/credentials.md", "monkey.txt",
		"id_ed25519.pub", "home/id_rsa.pub", "certs/server.pem", "tls.key", "ca.crt", "kube/config.go"} {
		if looksSecret(name) {
			t.Errorf("looksSecret(%q) = true", name)
		}
	}
}

func TestSecretsErrorNamesFileLineAndRuleAndEachFileOnce(t *testing.T) {
	err := &SecretsError{Findings: []Finding{{File: ".env", Rule: "file-name"}, {File: "k.pem", Line: 3, Rule: "private-key"}, {File: "k.pem", Line: 9, Rule: "private-key"}}}
	if want := "refusing to pack 2 file(s) that look like secrets: .env, k.pem:3 (private-key), k.pem:9 (private-key)"; err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
	if got := err.Files(); !slices.Equal(got, []string{".env", "k.pem"}) {
		t.Errorf("Files() = %q", got)
	}
}

// The fixture of issue 11: 22 files holding or named like secrets (14 of them missed by the
// first guard), and public material that must pass (the first guard flagged every public
// certificate and id_rsa.pub).
func TestSecretsGuardFixture(t *testing.T) {
	ecKey := privateKeyPEM(t, "EC PRIVATE KEY", 121)
	rsaKey := privateKeyPEM(t, "RSA PRIVATE KEY", 1190)
	pkcs8 := privateKeyPEM(t, "PRIVATE KEY", 138)
	cert := certificatePEM(t)
	awsID := "AK" + "IA" + "Q3EGRIMSYQZ7WXV2"
	sa, _ := json.MarshalIndent(map[string]string{
		"type": "service_account", "project_id": "p", "private_key_id": "0123abcd", "private_key": pkcs8, "client_email": "x@p.iam.gserviceaccount.com",
	}, "", "  ")
	pgp := "-----BEGIN PGP " + "PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n" + wrap(randomBase64(600)) + "=AbCd\n-----END PGP PRIVATE KEY BLOCK-----\n"
	tests := []secretFixture{
		{"settings/aws.py", "import os\nAWS_ACCESS_KEY_ID = \"" + awsID + "\"\n", "aws-access-key-id", 2},
		{"deploy/notes.txt", "# the deploy key\n" + rsaKey, "private-key", 2},
		{"credentials.json", string(sa), "service-account-key", 3},
		{"release/signing.asc", pgp, "private-key", 1},
		{"tls/server.key", ecKey, "private-key", 1},
		{"tls/bundle.pem", cert + ecKey, "private-key", strings.Count(cert, "\n") + 1},
		{".github/ci.env.yml", "env:\n  TOKEN: gh" + "p_" + strings.Repeat("aB3dE5", 6) + "\n", "github-token", 2},
		{"bot/settings.py", "SLACK = 'xo" + "xb-1234567890-abcdefABCDEF'\n", "slack-token", 1},
		{"ci/gitlab.toml", "token = \"gl" + "pat-" + strings.Repeat("x1Y2", 5) + "\"\n", "gitlab-token", 1},
		{"web/billing.js", "const key = 'sk" + "_live_" + strings.Repeat("4eC39HqLyjWDarjtT1zdp7dc", 1) + "';\n", "stripe-secret-key", 1},
		{".git-credentials", "https://u:p@example.com\n", "file-name", 0},
		{".kube/config", "apiVersion: v1\n", "file-name", 0},
		{"home/id_ecdsa", "x", "file-name", 0},
		{".ENV", "A=1\n", "file-name", 0},
		{".pgpass", "h:5432:*:u:p\n", "file-name", 0},
		{"web/.htpasswd", "u:$apr1$x\n", "file-name", 0},
		{".dockercfg", "{}", "file-name", 0},
		{"infra/terraform.tfstate", "{}", "file-name", 0},
		{"keys/key.ppk", "x", "file-name", 0},
		{"android/keystore.jks", "x", "file-name", 0},
		{".env.production", "A=1\n", "file-name", 0},
		{".aws/credentials", "[default]\n", "file-name", 0},
		{"certs/ca.pem", cert, "", 0},
		{"certs/server.crt", cert + cert, "", 0},
		{"home/id_rsa.pub", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ u@h\n", "", 0},
		{"keys/public.key", "-----BEGIN PUBLIC KEY-----\n" + wrap(randomBase64(91)) + "-----END PUBLIC KEY-----\n", "", 0},
		{"app/pem.py", "# reads keys\nMARK = \"-----BEGIN " + "PRIVATE KEY-----\"\nDOC_ID = \"AK" + "IAIOSFODNN7EXAMPLE\"\nif line == MARK:\n    pass\n", "", 0},
	}
	if len(tests) != 27 {
		t.Fatalf("%d files in the fixture, want 27", len(tests))
	}
	checkFixtures(t, tests, func(t *testing.T, tt secretFixture, err error, out string) {
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("error %q: want one line", err)
		}
		for _, secret := range []string{awsID, "MII", strings.TrimSpace(strings.SplitN(tt.content, "\n", 3)[min(1, strings.Count(tt.content, "\n"))])} {
			if tt.line > 0 && len(secret) > 8 && strings.Contains(err.Error(), secret) {
				t.Fatalf("the error prints the secret: %q", err)
			}
		}
		if left, _ := os.ReadDir(out); len(left) != 0 {
			t.Fatalf("left behind: %v", left)
		}
	})
}

func TestAllowSecretsTakesDockerignorePatterns(t *testing.T) {
	key := privateKeyPEM(t, "EC PRIVATE KEY", 121)
	files := map[string]string{
		"README.md":            "x",
		"a/b/c/dev.pem":        key,
		"top.pem":              key,
		"fixtures/keys/id_rsa": "x",
		"fixtures/keys/real":   key,
		"fixtures/.env":        "A=1",
	}
	tests := []struct {
		name      string
		allow     []string
		flagged   []string
		unmatched []string
	}{
		{"nothing allowed: the names stop the run before any content is read", nil, []string{"fixtures/.env", "fixtures/keys/id_rsa"}, nil},
		{"names allowed, content not", []string{"fixtures/.env", "fixtures/keys/id_rsa"}, []string{"a/b/c/dev.pem", "fixtures/keys/real", "top.pem"}, nil},
		{"** reaches every depth", []string{"**/*.pem", "fixtures"}, nil, nil},
		{"a directory allows what it holds", []string{"fixtures/", "*.pem", "a/b/c/*.pem"}, nil, nil},
		{"an exception takes one back", []string{"fixtures", "!fixtures/keys/real", "**/*.pem"}, []string{"fixtures/keys/real"}, nil},
		{"a pattern matching nothing is told", []string{"**/*.pem", "fixtures", "secrets/**", "*.p12"}, nil, []string{"secrets/**", "*.p12"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			findings, _, err := guardWarn(t, files, tt.allow, func(w []string) {
				if !slices.Equal(w, tt.unmatched) {
					t.Errorf("unmatched %q, want %q", w, tt.unmatched)
				}
			})
			var flagged []string
			for _, f := range findings {
				flagged = append(flagged, f.File)
			}
			slices.Sort(flagged)
			if !slices.Equal(flagged, tt.flagged) {
				t.Fatalf("flagged %q (%v), want %q", flagged, err, tt.flagged)
			}
		})
	}
}

func TestContentScanFindsSecretsAcrossReadsWithTheirLines(t *testing.T) {
	token := "gh" + "p_" + strings.Repeat("Zy9", 12)
	for _, at := range []int{1, 2, 32<<10 - 3, readChunk - 20, readChunk - 3, readChunk + 1, readChunk + lookahead - 2, 2*readChunk - lookbehind} {
		lines := at / 40
		content := strings.Repeat(strings.Repeat("x", 39)+"\n", lines) + strings.Repeat("y", max(0, at-lines*40-1)) + " " + token + "\nend\n"
		findings, _, _ := guard(t, map[string]string{"big.txt": content}, nil)
		want := []Finding{{File: "big.txt", Line: lines + 1, Rule: "github-token"}}
		if !slices.Equal(findings, want) {
			t.Errorf("token at byte %d: findings %v, want %v", at, findings, want)
		}
	}
}

func TestContentScanLeavesOrdinarySourceAlone(t *testing.T) {
	// Text close to the rules: a PEM header with no key, tokens too short, words that hold the keywords.
	content := strings.Join([]string{
		`const header = "-----BEGIN RSA ` + `PRIVATE KEY-----"`,
		`ghost := ghp_short // "ghp_" + "x"`,
		`AKIAsmall, TASKIA1234567890ABCDEF`,
		`xoxo-gossip, desk_live_x, AIzaShort, npm_install`,
		`hf_model = "bert"`,
	}, "\n")
	if findings, _, err := guard(t, map[string]string{"code.go": content}, nil); err != nil {
		t.Fatalf("flagged %v: %v", findings, err)
	}
}

// guard runs the whole guard on files as a source tree: the names, then the content as Write
// packs it. It returns the findings and the output directory.
func guard(t *testing.T, files map[string]string, allow []string) ([]Finding, string, error) {
	return guardWarn(t, files, allow, nil)
}

func guardWarn(t *testing.T, files map[string]string, allow []string, warned func([]string)) ([]Finding, string, error) {
	t.Helper()
	root, out := t.TempDir(), t.TempDir()
	gittest.Write(t, root, files)
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	entries, _, err := Scan(root, paths)
	if err != nil {
		t.Fatal(err)
	}
	entries, unmatched, err := GuardSecrets(entries, allow)
	if warned != nil {
		warned(unmatched)
	}
	if err == nil {
		_, err = Write(context.Background(), out, "a.tar.gz", Complete(entries), epoch, nil)
	}
	var se *SecretsError
	if err != nil && !errors.As(err, &se) {
		t.Fatalf("not a secrets error: %v", err)
	}
	if se != nil {
		return se.Findings, out, err
	}
	return nil, out, err
}

func privateKeyPEM(t *testing.T, kind string, size int) string {
	t.Helper()
	der := make([]byte, size)
	rand.Read(der)
	return string(pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}))
}

func certificatePEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func randomBase64(n int) string {
	b := make([]byte, n)
	r := mrand.NewChaCha8([32]byte{1})
	r.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func wrap(s string) string {
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	return b.String() + s + "\n"
}

// Go's own certificates (the first guard flagged every *.pem): only the files that hold a
// private key flag, each at its key's line.
func TestGoSourceCertificatesPassAndItsKeysFlag(t *testing.T) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skipf("go env GOROOT: %v", err) // not a failure of the guard: the test needs Go's sources
	}
	root := filepath.Join(strings.TrimSpace(string(out)), "src")
	var paths []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && slices.Contains([]string{".pem", ".crt", ".key"}, filepath.Ext(p)) {
			rel, _ := filepath.Rel(root, p)
			paths = append(paths, filepath.ToSlash(rel))
		}
		return nil
	})
	if len(paths) < 50 {
		t.Skipf("only %d certificates under %s", len(paths), root)
	}
	entries, _, err := Scan(root, paths)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Write(context.Background(), t.TempDir(), "a.tar.gz", entries, epoch, nil)
	var se *SecretsError
	if err != nil && !errors.As(err, &se) {
		t.Fatal(err)
	}
	flagged := map[string]bool{}
	if se != nil {
		for _, f := range se.Findings {
			flagged[f.File] = true
		}
	}
	for _, p := range paths {
		data, _ := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		holdsKey := regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=]{64}`).Match(data)
		if flagged[p] != holdsKey {
			t.Errorf("%s: flagged %v, holds a private key %v", p, flagged[p], holdsKey)
		}
	}
	t.Logf("%d certificates and keys, %d flagged", len(paths), len(flagged))
}

// FuzzContentScanAgreesAcrossReads: what the scan finds in some text does not depend on where
// the reads of the file cut it. Seeds run in go test; go test -fuzz ContentScan explores.
func FuzzContentScanAgreesAcrossReads(f *testing.F) {
	key := "-----BEGIN EC " + "PRIVATE KEY-----\n" + wrap(randomBase64(120)) + "-----END EC PRIVATE KEY-----\n"
	for _, seed := range []string{
		key, "x = 'AK" + "IAQ3EGRIMSYQZ7WXV2'\n", "t: gh" + "p_" + strings.Repeat("a1", 18) + "\n",
		"{\"private_key\": \"-----BEGIN " + "PRIVATE KEY-----\\n" + randomBase64(80) + "\"}", "no secret here\n",
		"t = '" + jwtClaims(1, `{"iss":"https://x","iat":1}`) + "'\n", "SK" + fake(2, 32, hexLow) + "\n", "x = 'S" + "G." + fake(3, 22, b64url) + "." + fake(4, 43, b64url) + "'\n",
		"aws_secret_" + "access_key = " + fake(5, 40, alnum) + "\n",
	} {
		f.Add(seed, uint16(0))
		f.Add(seed, uint16(lookahead-7))
		f.Add(seed, uint16(lookahead+lookbehind+3))
	}
	f.Fuzz(func(t *testing.T, text string, shift uint16) {
		if wide, _ := utf16Order([]byte(text)); wide {
			t.Skip("UTF-16 is told from a file's start: after filler lines it is other bytes")
		}
		alone := &contentScanner{}
		if _, err := alone.copyFile("f", io.Discard, strings.NewReader(text), int64(len(text))); err != nil {
			t.Fatal(err)
		}
		// The same text starting near the end of the first read, after whole lines of filler.
		lines := (readChunk - lookahead + int(shift)) / 32
		padded := strings.Repeat(strings.Repeat(".", 31)+"\n", lines) + text
		cut := &contentScanner{}
		if _, err := cut.copyFile("f", io.Discard, strings.NewReader(padded), int64(len(padded))); err != nil {
			t.Fatal(err)
		}
		if len(alone.findings) != len(cut.findings) {
			t.Fatalf("alone %v, cut %v", alone.findings, cut.findings)
		}
		for i, a := range alone.findings {
			if c := cut.findings[i]; c.Rule != a.Rule || c.Line != a.Line+lines {
				t.Fatalf("alone %v, cut %v (after %d lines)", alone.findings, cut.findings, lines)
			}
		}
	})
}
