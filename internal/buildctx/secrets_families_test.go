package buildctx

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
)

// fake makes n characters of alphabet, the same on every run; the tokens of the fixtures are
// put together here, at test time, so that no scanner flags this repository.
func fake(seed uint64, n int, alphabet string) string {
	r := mrand.New(mrand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

const (
	alnum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	hexLow = "0123456789abcdef"
	b64url = alnum + "-_"
)

func utf16File(text string, bigEndian bool) string {
	units := utf16.Encode([]rune("\uFEFF" + text))
	var b bytes.Buffer
	for _, u := range units {
		if bigEndian {
			binary.Write(&b, binary.BigEndian, u)
		} else {
			binary.Write(&b, binary.LittleEndian, u)
		}
	}
	return b.String()
}

// utf16NoBOM is text in UTF-16 as .NET's Encoding.Unicode.GetBytes or iconv writes it: no byte-order mark.
func utf16NoBOM(text string, bigEndian bool) string { return utf16File(text, bigEndian)[2:] }

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func jwt(seed uint64, signed bool) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"RS256","kid":"` + fake(seed, 40, alnum) + `","typ":"JWT"}`))
	body := enc.EncodeToString([]byte(`{"iss":"kubernetes/serviceaccount","sub":"system:serviceaccount:ci:deployer","exp":4102444800}`))
	if !signed {
		return head + "." + body + "."
	}
	return head + "." + body + "." + fake(seed+1, 342, b64url)
}

func jwtClaims(seed uint64, claims string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claims)) + "." + fake(seed, 43, b64url)
}

// secretFixture is a file packed beside a README, and what the guard must say of it.
type secretFixture struct {
	name, content string
	rule          string // "" when the file must pass
	line          int
}

// checkFixtures packs each fixture and checks the one finding it must make, or none; then, for
// a file that must be caught, what more checks the refusal err and the output directory out.
func checkFixtures(t *testing.T, tests []secretFixture, more func(t *testing.T, tt secretFixture, err error, out string)) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			findings, out, err := guard(t, map[string]string{"README.md": "hello\n", tt.name: tt.content}, nil)
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("flagged: %v", err)
				}
				return
			}
			want := []Finding{{File: tt.name, Line: tt.line, Rule: tt.rule}}
			if !slices.Equal(findings, want) {
				t.Fatalf("findings %v (%v), want %v", findings, err, want)
			}
			if more != nil {
				more(t, tt, err, out)
			}
		})
	}
}

// Every family issue 16 found missed, in a file as it is found in repositories, with the line
// and rule the guard names; and, for each, text close to it that holds no secret.
func TestSecretsFamiliesOfIssue16(t *testing.T) {
	key := privateKeyPEM(t, "RSA PRIVATE KEY", 1190)
	pkcs8 := privateKeyPEM(t, "PRIVATE KEY", 1216)
	cert := certificatePEM(t)
	sa, _ := json.MarshalIndent(map[string]string{
		"type": "service_account", "project_id": "prod-1", "private_key_id": fake(1, 40, hexLow), "private_key": pkcs8,
		"client_email": "deployer@prod-1.iam.gserviceaccount.com",
	}, "", "  ")
	azureKey := make([]byte, 64)
	rand.Read(azureKey)
	dockerAuth := `{"auths":{"ghcr.io":{"auth":"` + b64("deployer:"+"gh"+"p_"+fake(2, 36, alnum)) + `"}}}`
	uuid := fake(3, 8, hexLow) + "-" + fake(4, 4, hexLow) + "-4" + fake(5, 3, hexLow) + "-a" + fake(6, 3, hexLow) + "-" + fake(7, 12, hexLow)
	tests := []secretFixture{
		{"app/llm.py", "import openai\n\nopenai.api_key = \"sk-" + fake(8, 20, alnum) + "T3Blbk" + "FJ" + fake(9, 20, alnum) + "\"\n", "openai-or-anthropic-key", 3},
		{"bot/socket_mode.py", "import os\nAPP_TOKEN = \"xa" + "pp-1-A04" + fake(10, 8, "0123456789ABCDEF") + "-4" + fake(11, 12, "0123456789") + "-" + fake(12, 64, hexLow) + "\"\n", "slack-token", 2},
		{"ops/notify.sh", "#!/bin/sh\ncurl -X POST -d \"$1\" https://hooks.sl" + "ack.com/services/T0" + fake(13, 8, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") + "/B0" + fake(14, 8, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") + "/" + fake(15, 24, alnum) + "\n", "slack-webhook", 2},
		{"billing/webhook.js", "// Stripe\nconst endpointSecret = 'wh" + "sec_" + fake(16, 32, alnum) + "';\n", "stripe-webhook-secret", 2},
		{"ci/publish.sh", "set -e\necho \"//registry.npmjs.org/:_auth" + "Token=" + uuid + "\" > ~/.npmrc\nnpm publish\n", "npm-auth-token", 2},
		{"k8s/tls-secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tls\ntype: kubernetes.io/tls\ndata:\n  tls.crt: " + b64(cert) + "\n  tls.key: " + b64(key) + "\n", "base64-private-key", 8},
		{"k8s/gcp-sa.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: gcp\ndata:\n  key.json: " + b64(string(sa)) + "\n", "base64-private-key", 6},
		{"deploy/prod-cluster.yaml", "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: " + b64(cert) + "\n    server: https://10.0.0.1:6443\n  name: prod\nkind: Config\nusers:\n- name: admin\n  user:\n    client-certificate-data: " + b64(cert) + "\n    client-key-data: " + b64(key) + "\n", "base64-private-key", 12},
		{"deploy/staging.yaml", "apiVersion: v1\nkind: Config\nusers:\n- name: ci\n  user:\n    token: " + fake(17, 48, alnum) + "\n", "kubeconfig-token", 6},
		{"k8s/pull-secret.yaml", "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: " + b64(dockerAuth) + "\n", "docker-config-auth", 5},
		{"ci/registry.json", "{\n  \"auths\": {\n    \"registry.example.com\": {\n      \"auth\": \"" + b64("ci:"+fake(18, 24, alnum)) + "\"\n    }\n  }\n}\n", "docker-config-auth", 2},
		{"deploy/prod.env", "DATABASE_URL=postgres://app@db/app\n", "file-name", 0},
		{"mail/send.py", "import sendgrid\nsg = sendgrid.SendGridAPIClient(\"S" + "G." + fake(19, 22, b64url) + "." + fake(20, 43, b64url) + "\")\n", "sendgrid-api-key", 2},
		{"sms/client.rb", "# Twilio\nAPI_KEY = 'S" + "K" + fake(21, 32, hexLow) + "'\n", "twilio-api-key", 2},
		{"storage/settings.json", "{\n  \"Storage\": \"DefaultEndpointsProtocol=https;AccountName=prodfiles;Account" + "Key=" + base64.StdEncoding.EncodeToString(azureKey) + ";EndpointSuffix=core.windows.net\"\n}\n", "azure-storage-key", 2},
		{"scripts/env.sh", "export AWS_REGION=eu-west-1\nexport AWS_SECRET_" + "ACCESS_KEY=" + fake(22, 30, alnum) + "/+" + fake(23, 8, alnum) + "\n", "aws-secret-access-key", 2},
		{"config/boto.cfg", "[Credentials]\naws_secret_" + "access_key = " + fake(24, 40, alnum+"/+") + "\n", "aws-secret-access-key", 2},
		{"cdk/assumed.json", "{\n  \"Credentials\": {\n    \"SecretAccess" + "Key\": \"" + fake(25, 40, alnum) + "\",\n    \"Expiration\": \"2026-01-01T00:00:00Z\"\n  }\n}\n", "aws-secret-access-key", 3},
		{"tests/auth_test.py", "# a real token, copied from a cluster\nTOKEN = \"" + jwt(26, true) + "\"\n", "jwt", 2},
		{"windows/setup.ps1", utf16File("# setup\r\n$env:GITHUB_TOKEN = \"gh"+"p_"+fake(27, 36, alnum)+"\"\r\n", false), "github-token", 2},
		{"windows/aws.reg", utf16File("Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software\\Deploy]\r\n\"KeyId\"=\"AK"+"IA"+fake(28, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")+"\"\r\n", true), "aws-access-key-id", 4},

		// Near misses: no secret in them.
		{"docs/jwt.md", "An unsigned token: `" + jwt(29, false) + "` (alg none).\n", "", 0},
		{"auth/expired_test.go", "var expired = \"" + jwtClaims(32, `{"iss":"https://login.example.com","sub":"u1","exp":1637195112}`) + "\"\n", "", 0},
		{"auth/claims_test.go", "var token = \"" + jwtClaims(33, `{"foo":"bar","iss":"test","aud":"single"}`) + "\"\n", "", 0},
		{"web/supabase.js", "export const SERVICE_KEY = \"" + jwtClaims(34, `{"iss":"supabase","ref":"abcdefghij","role":"service_role","iat":1700000000,"exp":4102444800}`) + "\"\n", "jwt", 1},
		{"k8s/ca.yaml", "kind: Secret\ndata:\n  ca.crt: " + b64(cert) + "\n", "", 0},
		{"deploy/ci-kubeconfig.yaml", "users:\n- name: ci\n  user:\n    token: ${K8S_TOKEN}\n", "", 0},
		{".github/workflows/ci.yml", "jobs:\n  build:\n    steps:\n      - uses: actions/checkout@v4\n        with:\n          token: ${{ secrets.GITHUB_TOKEN }}\n", "", 0},
		{"config/example.cfg", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY\n", "", 0},
		{"ci/npmrc.sh", "echo \"//registry.npmjs.org/:_authToken=${NPM_TOKEN}\" > .npmrc\n", "", 0},
		{"storage/template.json", "{\"conn\": \"DefaultEndpointsProtocol=https;AccountName=x;AccountKey=<your key>\"}\n", "", 0},
		{"src/hash.go", "const sum = \"SK" + fake(30, 40, hexLow) + "\"\nvar taskID = \"TASK" + fake(31, 32, hexLow) + "\"\n", "", 0},
		{"src/sendgrid.go", "// SG.x.y is how SendGrid keys look\nvar prefix = \"SG.\"\n", "", 0},
		{"docs/slack.md", "Create a webhook at https://hooks.slack.com/services/ and paste it.\n", "", 0},
		{"windows/readme.txt", utf16File("Run setup.ps1 as administrator.\r\n", false), "", 0},
		{"ci/registry-template.json", "{\"auths\": {\"registry.example.com\": {\"auth\": \"\"}}}\n", "", 0},
	}
	checkFixtures(t, tests, nil)
	caught := 0
	for _, tt := range tests {
		if tt.rule != "" {
			caught++
		}
	}
	t.Logf("%d fixtures holding secrets, %d without", caught, len(tests)-caught)
}

// A UTF-16 file, with a byte-order mark or without, is scanned as the text it holds wherever
// the reads cut it, a code unit too.
func TestUTF16FilesAreScannedAcrossReads(t *testing.T) {
	token := "gh" + "p_" + fake(40, 36, alnum)
	for _, bom := range []bool{true, false} {
		encode, filler := utf16File, strings.Repeat("é", 39) // with a mark, any text
		if !bom {
			encode, filler = utf16NoBOM, "é"+strings.Repeat("x", 38) // without, mostly ASCII: how it is told apart
		}
		for _, bigEndian := range []bool{false, true} {
			for _, at := range []int{1, readChunk/2 - 20, readChunk/2 - 1, readChunk/2 + 3, readChunk - 7, readChunk + lookahead} {
				lines := at / 40
				text := strings.Repeat(filler+"\n", lines) + strings.Repeat("y", max(0, at-lines*40-1)) + " " + token + "\r\nend\r\n"
				findings, _, _ := guard(t, map[string]string{"setup.ps1": encode(text, bigEndian)}, nil)
				want := []Finding{{File: "setup.ps1", Line: lines + 1, Rule: "github-token"}}
				if !slices.Equal(findings, want) {
					t.Errorf("byte-order mark %v, big-endian %v, token at code unit %d: findings %v, want %v", bom, bigEndian, at, findings, want)
				}
			}
		}
	}
}

// jwtIOSample is the token jwt.io shows (HS256, secret "your-256-bit-secret"), put together
// here so that no scanner flags this repository.
const jwtIOSample = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + "." + "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ" + "." + "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"

// What the adversarial pass of issue 16 (point 7) found: tokens in UTF-16 without a
// byte-order mark were missed, and jwt.io's sample in documentation was refused. Each case
// has its counterpart the other way.
func TestSecretsAdversarialCasesOfIssue16(t *testing.T) {
	ghp := "gh" + "p_" + fake(50, 36, alnum)
	glpat := "glp" + "at-" + fake(51, 20, b64url)
	var table bytes.Buffer // a binary table of small integers: NULs everywhere, not text
	for i := range 256 {
		binary.Write(&table, binary.LittleEndian, uint32(i*7))
	}
	tests := []secretFixture{
		{"windows/deploy.ps1", utf16NoBOM("# deploy\r\n$env:GITHUB_TOKEN = \""+ghp+"\"\r\n", false), "github-token", 2},
		{"windows/deploy-be.ps1", utf16NoBOM("# deploy\r\n$env:GITHUB_TOKEN = \""+ghp+"\"\r\n", true), "github-token", 2},
		{"windows/gitlab.cfg", utf16NoBOM("[gitlab]\r\nurl = https://gitlab.example.com\r\ntoken = "+glpat+"\r\n", false), "gitlab-token", 3},
		{"windows/gitlab-be.cfg", utf16NoBOM("[gitlab]\r\nurl = https://gitlab.example.com\r\ntoken = "+glpat+"\r\n", true), "gitlab-token", 3},
		{"windows/notes.txt", utf16NoBOM("Ask ops for a GitLab token (glpat-...) and keep it out of the repository.\r\n", false), "", 0},
		{"data/table.bin", table.String() + "\ntoken " + ghp + "\n", "github-token", 2 + bytes.Count(table.Bytes(), []byte{'\n'})},

		{"docs/auth.md", "Paste a token such as `" + jwtIOSample + "` into the header.\n", "", 0},
		{"docs/rs256.md", "```\n" + jwtClaims(52, `{"sub":"1234567890","name":"John Doe","admin":true,"iat":1516239022}`) + "\n```\n", "", 0},
		{"auth/sample_test.go", "var token = \"" + jwtClaims(53, `{"sub":"1234567890","name":"John Doe","iat":1700000000,"exp":4102444800}`) + "\"\n", "", 0},
		// A real subject with the sample's name, or the sample's subject with a real issuer's name: no sample.
		{"auth/prod.go", "var token = \"" + jwtClaims(54, `{"sub":"8f14e45f-ceea-467a-9575-6b2f1d3c9a10","name":"John Doe","iat":1516239022}`) + "\"\n", "jwt", 1},
		{"auth/prod2.go", "var token = \"" + jwtClaims(55, `{"sub":"1234567890","name":"deploy-bot","iss":"https://auth.example.com","iat":1516239022}`) + "\"\n", "jwt", 1},
		// An API key issued as a JWT without "exp": years old, still good until revoked.
		{"workflows/n8n.env.example", "N8N_API_KEY=" + jwtClaims(56, `{"sub":"3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d","iss":"n8n","aud":"public-api","iat":1516239022}`) + "\n", "jwt", 1},
	}
	checkFixtures(t, tests, nil)
}

// Text is told from BOM-less UTF-16 by its first block alone.
func TestUTF16OrderWithoutAMark(t *testing.T) {
	tests := []struct {
		name            string
		start           string
		wide, bigEndian bool
	}{
		{"little-endian ASCII text", utf16NoBOM("Windows Registry Editor Version 5.00\r\n", false), true, false},
		{"big-endian ASCII text", utf16NoBOM("Windows Registry Editor Version 5.00\r\n", true), true, true},
		{"a byte-order mark, whatever follows", utf16File("日本語のテキスト", true), true, true},
		{"UTF-8 text", "package main\n\nfunc main() {}\n// ....................\n", false, false},
		{"too short to hold a token", utf16NoBOM("short", false), false, false},
		{"mostly not ASCII", utf16NoBOM("日本語のテキストです。日本語のテキストです。", false), false, false},
		{"NULs and no text", strings.Repeat("\x00\x00\x01\x00", 64), false, false},
		{"a few NULs in text", "GIF89a\x00\x01" + strings.Repeat("text ", 40), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wide, bigEndian := utf16Order([]byte(tt.start))
			if wide != tt.wide || wide && bigEndian != tt.bigEndian {
				t.Fatalf("utf16Order = %v, %v; want %v, %v", wide, bigEndian, tt.wide, tt.bigEndian)
			}
		})
	}
}
