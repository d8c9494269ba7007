package buildctx

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The content scan of the secrets guard looks at every byte pack streams, in the same pass:
// a few bytes and prefixes are searched (bytes.IndexByte and bytes.Index: vectorised, about
// memory speed), and only where a token's prefix occurs does a rule look closely. The rules
// are the field's usual ones (gitleaks' for these tokens), kept to what is specific enough
// never to flag ordinary source. gitleaks itself, as a library, scanned 3.6 MB/s: 30 times
// slower than packing.

// contentRule confirms a trigger: b starts where the token would (at least lookahead bytes
// after it unless the file ends sooner), back holds up to lookbehind bytes before it.
type contentRule struct {
	id      string
	confirm func(back, b []byte) bool
}

const (
	lookahead  = 1024 // bytes after a token's start a rule may need
	lookbehind = 64   // bytes before it
	readChunk  = 256 << 10
)

var (
	ruleServiceAccount = contentRule{"service-account-key", func(back, b []byte) bool {
		return bytes.Contains(back, []byte(`"private_key"`)) && privateKeyBlock(back, b)
	}}
	rulePrivateKey = contentRule{"private-key", privateKeyBlock}
	rulePuTTY      = contentRule{"putty-private-key", func(back, b []byte) bool {
		return len(b) > 21 && isDigit(b[20]) && b[21] == ':'
	}}
	ruleAWS = contentRule{"aws-access-key-id", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[4:], isUpperOrDigit) == 16 && !bytes.HasPrefix(b[13:], []byte("EXAMPLE"))
	}}
	// An AWS secret access key alone (its key id elsewhere): 40 base64 characters assigned to
	// a name that says what it is (aws_secret_access_key, AWS_SECRET_ACCESS_KEY, "SecretAccessKey").
	ruleAWSSecret = contentRule{"aws-secret-access-key", func(back, b []byte) bool {
		v := assigned(b[bytes.IndexAny(b, "yY")+1:]) // after ..._KEY or ...Key
		n := run(v, isBase64)
		return n == 40 && !bytes.Contains(v[:n], []byte("EXAMPLE")) && bytes.IndexFunc(v[:n], unicode.IsDigit) >= 0
	}}
	ruleGitHub = contentRule{"github-token", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[4:], isAlnum) >= 36
	}}
	ruleGitHubPAT = contentRule{"github-fine-grained-token", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[11:], isWord) >= 82
	}}
	ruleGitLab = contentRule{"gitlab-token", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[6:], isTokenChar) >= 20
	}}
	ruleSlack = contentRule{"slack-token", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[5:], isTokenChar) >= 10
	}}
	// https://hooks.slack.com/services/T…/B…/secret (and /workflows/, /triggers/): the URL is the credential.
	ruleSlackWebhook = contentRule{"slack-webhook", func(back, b []byte) bool {
		rest, ok := bytes.CutPrefix(b, []byte("hooks.slack.com/"))
		if !ok {
			return false
		}
		for _, kind := range []string{"services/", "workflows/", "triggers/"} {
			if path, ok := bytes.CutPrefix(rest, []byte(kind)); ok {
				n := run(path, func(c byte) bool { return isAlnum(c) || c == '/' })
				return n >= 30 && bytes.IndexByte(path[:n], '/') > 0
			}
		}
		return false
	}}
	ruleStripe = contentRule{"stripe-secret-key", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[8:], isAlnum) >= 24
	}}
	ruleStripeWebhook = contentRule{"stripe-webhook-secret", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[6:], isAlnum) >= 32
	}}
	ruleGoogleAPI = contentRule{"gcp-api-key", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[4:], isTokenChar) == 35
	}}
	ruleNPM = contentRule{"npm-token", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[4:], isAlnum) == 36
	}}
	// .npmrc lines, wherever they are written (a Dockerfile's echo, a CI script):
	// //registry.npmjs.org/:_authToken=<uuid or token>, or :_auth=<base64 of user:password>.
	ruleNPMAuth = contentRule{"npm-auth-token", func(back, b []byte) bool {
		if v, ok := bytes.CutPrefix(b, []byte(":_authToken")); ok {
			return run(assigned(v), isTokenChar) >= 20
		}
		v, ok := bytes.CutPrefix(b, []byte(":_auth"))
		return ok && decodesToPair(assigned(v))
	}}
	rulePyPI = contentRule{"pypi-token", func(back, b []byte) bool {
		return bytes.HasPrefix(b, []byte("pypi-AgEIcHlwaS5vcmc")) && run(b[20:], isTokenChar) >= 50
	}}
	ruleAIKey = contentRule{"openai-or-anthropic-key", func(back, b []byte) bool {
		i := bytes.IndexByte(b[3:], '-') + 4
		return boundaryBefore(back) && run(b[i:], isTokenChar) >= 40
	}}
	// OpenAI's keys before project keys: sk-<20>T3BlbkFJ<20> (T3BlbkFJ is base64 of "OpenAI").
	ruleOpenAILegacy = contentRule{"openai-or-anthropic-key", func(back, b []byte) bool {
		n := run(b[3:], isTokenChar)
		return boundaryBefore(back) && n >= 40 && bytes.Contains(b[3:3+n], []byte("T3BlbkFJ"))
	}}
	ruleHuggingFace = contentRule{"huggingface-token", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[3:], isAlpha) == 34
	}}
	// SendGrid: SG.<22>.<43>.
	ruleSendGrid = contentRule{"sendgrid-api-key", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[3:], isTokenChar) == 22 && len(b) > 26 && b[25] == '.' && run(b[26:], isTokenChar) >= 43
	}}
	// Twilio API key SIDs: SK and 32 hexadecimal digits.
	ruleTwilio = contentRule{"twilio-api-key", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[2:], isHex) == 32 && run(b[2:], isAlnum) == 32
	}}
	// Azure storage connection strings: AccountKey=<base64 of 64 bytes>.
	ruleAzure = contentRule{"azure-storage-key", func(back, b []byte) bool {
		v, ok := bytes.CutPrefix(b, []byte("AccountKey="))
		return ok && run(v, isBase64) >= 80
	}}
	// A JSON Web Token with its signature that an issuer gave someone and that has not
	// expired: header.payload.signature in base64url; the payload JSON names an issuer or a
	// subject ("iss", "sub"), stamped with a time ("iat", "nbf", "exp") or named like a real
	// one (a URL, "kubernetes/serviceaccount", "system:serviceaccount:…"), and holds no "exp"
	// in the past. The test tokens of JWT libraries ({"foo":"bar","iss":"test"}) and expired
	// ones copied into tests grant nothing, nor does jwt.io's sample, the JWT of most
	// documentation: {"sub":"1234567890","name":"John Doe","iat":1516239022} (its RS256 and
	// other samples add "admin":true), whoever signed it. Age alone clears no token: one
	// without "exp" is good until revoked, however old its "iat". The trigger is the "J" of
	// the payload's "eyJ"; the header must look like one as far back as the scan can see.
	ruleJWT = contentRule{"jwt", func(back, b []byte) bool {
		h := 0
		for h < len(back) && isBase64URL(back[len(back)-1-h]) {
			h++
		}
		if h < 10 || h < len(back) && !bytes.HasPrefix(back[len(back)-h:], []byte("eyJ")) {
			return false
		}
		p := run(b[1:], isBase64URL)
		if p < 10 || len(b) <= p+1 || b[p+1] != '.' || run(b[p+2:], isBase64URL) < 16 {
			return false
		}
		var claims struct {
			Iss, Sub, Name string
			Exp, Iat, Nbf  *float64
		}
		payload, err := base64.RawURLEncoding.DecodeString(string(bytes.TrimRight(b[1:1+p], "=")))
		if err != nil || json.Unmarshal(payload, &claims) != nil || claims.Iss == "" && claims.Sub == "" {
			return false
		}
		if claims.Sub == jwtSampleSub && claims.Name == jwtSampleName {
			return false // jwt.io's sample (or a copy of it with other claims added, signed anew)
		}
		stamped := claims.Exp != nil || claims.Iat != nil || claims.Nbf != nil
		if !stamped && !strings.ContainsAny(claims.Iss+claims.Sub, "/:.|") {
			return false
		}
		return claims.Exp == nil || time.Unix(int64(*claims.Exp), 0).After(time.Now())
	}}
	// A base64 PEM private key (a Kubernetes Secret's data:, a kubeconfig's client-key-data, a
	// service-account JSON encoded whole): "LS0t" is base64 of "---", at a group boundary.
	ruleBase64Key = contentRule{"base64-private-key", func(back, b []byte) bool {
		n := run(b, isBase64) &^ 3
		var dec [lookahead]byte
		m, _ := base64.StdEncoding.Decode(dec[:], b[:n]) // what decodes before a fault is enough
		d := bytes.TrimLeft(dec[:m], "-")
		if !bytes.HasPrefix(d, []byte("BEGIN ")) {
			return false
		}
		i := bytes.Index(d[:min(len(d), 40)], []byte("PRIVATE KEY"))
		return i >= 0 && privateKeyBlock([]byte("-----BEGIN "), d[i:])
	}}
	// .dockerconfigjson: <base64> in a Kubernetes Secret of type kubernetes.io/dockerconfigjson.
	ruleDockerConfigJSON = contentRule{"docker-config-auth", func(back, b []byte) bool {
		v := assigned(bytes.TrimLeft(b[len(".dockerconfigjson"):], `"'`))
		return run(v, isBase64) >= 20 || bytes.HasPrefix(bytes.TrimLeft(v, "{ \r\n\t"), []byte(`"auths"`))
	}}
	// Config files only (see configFile): a docker config's "auths" with an auth, anywhere.
	ruleDockerAuths = contentRule{"docker-config-auth", func(back, b []byte) bool {
		for rest := b; ; {
			i := bytes.Index(rest, []byte(`"auth"`))
			if i < 0 {
				return false
			}
			rest = rest[i+len(`"auth"`):]
			if decodesToPair(assigned(rest)) {
				return true
			}
		}
	}}
	// Config files only: a kubeconfig user's token ("user:", then "token: <value>").
	ruleKubeToken = contentRule{"kubeconfig-token", func(back, b []byte) bool {
		if !bytes.Contains(back, []byte("user:")) {
			return false
		}
		v := assigned(b[len("token"):])
		return len(v) > 0 && v[0] != '$' && v[0] != '{' && v[0] != '<' && run(v, func(c byte) bool { return isTokenChar(c) || c == '.' }) >= 16
	}}
)

// The claims that mark jwt.io's sample payload: a placeholder subject and name no issuer uses.
const (
	jwtSampleSub  = "1234567890"
	jwtSampleName = "John Doe"
)

// Where the rules look: every token holds, at a fixed place, a byte that one pass finds
// (vectorised IndexByte, about memory speed): a '_' or a '-' for most, else a rare capital
// ('J', 'K', 'I', 'G') or a 'k'. Where the pass stops, one lookup of the byte before it
// dismisses what ends no token. Config files get a few prefix searches more (configFile).
var passes = []*pass{
	newPass('_',
		token{"ghp_", 3, &ruleGitHub}, token{"gho_", 3, &ruleGitHub}, token{"ghu_", 3, &ruleGitHub}, token{"ghs_", 3, &ruleGitHub},
		token{"ghr_", 3, &ruleGitHub}, token{"github_pat_", 6, &ruleGitHubPAT}, token{"sk_live_", 2, &ruleStripe},
		token{"rk_live_", 2, &ruleStripe}, token{"whsec_", 5, &ruleStripeWebhook}, token{"npm_", 3, &ruleNPM},
		token{":_auth", 1, &ruleNPMAuth}, token{"hf_", 2, &ruleHuggingFace},
		token{"secret_access_key", 6, &ruleAWSSecret}, token{"SECRET_ACCESS_KEY", 6, &ruleAWSSecret}),
	newPass('-', // and, by hand, PEM headers ("-----BEGIN ... PRIVATE KEY")
		token{"glpat-", 5, &ruleGitLab}, token{"xoxb-", 4, &ruleSlack}, token{"xoxa-", 4, &ruleSlack}, token{"xoxp-", 4, &ruleSlack},
		token{"xoxr-", 4, &ruleSlack}, token{"xoxs-", 4, &ruleSlack}, token{"xoxe-", 4, &ruleSlack}, token{"xapp-", 4, &ruleSlack},
		token{"sk-proj-", 2, &ruleAIKey}, token{"sk-ant-", 2, &ruleAIKey}, token{"sk-", 2, &ruleOpenAILegacy},
		token{"pypi-", 4, &rulePyPI}, token{"PuTTY-User-Key-File-", 5, &rulePuTTY}),
	newPass('I', token{"AKIA", 2, &ruleAWS}, token{"ASIA", 2, &ruleAWS}, token{"AIza", 1, &ruleGoogleAPI}),
	newPass('K', token{"SK", 1, &ruleTwilio}, token{"AccountKey=", 7, &ruleAzure}, token{"SecretAccessKey", 12, &ruleAWSSecret}),
	newPass('G', token{"SG.", 1, &ruleSendGrid}),
	newPass('k', token{"hooks.slack.com/", 3, &ruleSlackWebhook}),
	newPass('J'), // by hand: a JWT's payload (".eyJ")
}

// configTokens are searched for in config files only.
var configTokens = []prefixToken{
	{[]byte("LS0t"), &ruleBase64Key}, {[]byte(".dockerconfigjson"), &ruleDockerConfigJSON},
	{[]byte(`"auths"`), &ruleDockerAuths}, {[]byte("token:"), &ruleKubeToken},
}

// pass is a byte searched for and the tokens holding it, by the byte right before it.
type pass struct {
	c      byte
	before [256][]token
}

func newPass(c byte, tokens ...token) *pass {
	p := &pass{c: c}
	for _, t := range tokens {
		if t.at == 0 || t.prefix[t.at] != c {
			panic("token " + t.prefix + " does not hold its pass byte after its start")
		}
		p.before[t.prefix[t.at-1]] = append(p.before[t.prefix[t.at-1]], t)
	}
	return p
}

// prefixToken is a prefix searched for as it is.
type prefixToken struct {
	prefix []byte
	rule   *contentRule
}

// token is a prefix whose rule runs where it occurs, found by the pass that stops on its byte at.
type token struct {
	prefix string
	at     int
	rule   *contentRule
}

// privateKeyBlock confirms "PRIVATE KEY" as the header of a PEM, OpenSSH, PGP or SSH2 private
// key followed by key material (64 base64 characters at least, past any header lines), in a
// file of its own, a JSON string with \n escapes (a service-account key) or a string literal.
func privateKeyBlock(back, b []byte) bool {
	line := back[bytes.LastIndexByte(back, '\n')+1:]
	i := bytes.Index(line, []byte("BEGIN "))
	if i < 4 || !bytes.HasSuffix(line[:i], []byte("----")) && !bytes.HasSuffix(line[:i], []byte("---- ")) {
		return false
	}
	rest := b[len("PRIVATE KEY"):]
	rest = bytes.TrimPrefix(rest, []byte(" BLOCK"))
	switch {
	case bytes.HasPrefix(rest, []byte("-----")):
		rest = rest[5:]
	case bytes.HasPrefix(rest, []byte(" ----")):
		rest = rest[5:]
	default:
		return false
	}
	return keyMaterial(rest)
}

// keyMaterial reports whether b begins with at least 64 base64 characters, allowing line
// breaks (real or escaped), string-literal punctuation and "Name: value" header lines.
func keyMaterial(b []byte) bool {
	n, atLineStart := 0, 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case isAlnum(c) || c == '+' || c == '/' || c == '=':
			if n++; n >= 64 {
				return true
			}
		case c == '\n' || c == '\r':
			atLineStart = n
		case c == '\\' && i+1 < len(b) && (b[i+1] == 'n' || b[i+1] == 'r'):
			i++
			atLineStart = n
		case c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '`' || c == ',':
		case c == ':': // a header line (Proc-Type:, Version:, Comment:): its characters are no key
			n = atLineStart
			for i < len(b) && b[i] != '\n' && !(b[i] == '\\' && i+1 < len(b) && b[i+1] == 'n') {
				i++
			}
			i--
		default:
			return false
		}
	}
	return false
}

func isDigit(c byte) bool        { return '0' <= c && c <= '9' }
func isHex(c byte) bool          { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
func isBase64(c byte) bool       { return isAlnum(c) || c == '+' || c == '/' || c == '=' }
func isBase64URL(c byte) bool    { return isAlnum(c) || c == '-' || c == '_' }
func isAlpha(c byte) bool        { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool        { return isAlpha(c) || isDigit(c) }
func isUpperOrDigit(c byte) bool { return 'A' <= c && c <= 'Z' || isDigit(c) }
func isWord(c byte) bool         { return isAlnum(c) || c == '_' }
func isTokenChar(c byte) bool    { return isWord(c) || c == '-' }

// run counts the leading bytes of b that ok accepts.
func run(b []byte, ok func(byte) bool) int {
	for i, c := range b {
		if !ok(c) {
			return i
		}
	}
	return len(b)
}

// assigned skips what separates a name from its value (spaces and quotes, then "=" or ":",
// then spaces and quotes) and returns the value onwards; nil when no "=" or ":" comes first.
func assigned(b []byte) []byte {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '"' || b[i] == '\'') {
		i++
	}
	if i == len(b) || b[i] != '=' && b[i] != ':' {
		return nil
	}
	for i++; i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '"' || b[i] == '\''); i++ {
	}
	return b[i:]
}

// decodesToPair reports whether b starts with base64 of "user:password" (a docker or npm auth).
func decodesToPair(b []byte) bool {
	n := run(b, isBase64)
	if n < 8 || n%4 != 0 {
		return false
	}
	dec, err := base64.StdEncoding.DecodeString(string(b[:n]))
	i := bytes.IndexByte(dec, ':')
	return err == nil && i > 0 && i < len(dec)-1 && utf8.Valid(dec) && bytes.IndexFunc(dec, unicode.IsControl) < 0
}

// boundaryBefore reports whether a token may start right after back.
func boundaryBefore(back []byte) bool {
	return len(back) == 0 || !isTokenChar(back[len(back)-1])
}

// maxFindingsPerFile keeps the message short when a file is full of keys.
const maxFindingsPerFile = 5

// contentScanner runs the content rules over each file as pack streams it, with no second
// read: it owns the read buffer, and keeps the last bytes of one read before the next so that
// a token or a rule's context may straddle reads.
type contentScanner struct {
	name     string
	config   bool // configFile(name): the config-file rules run too
	buf      []byte
	raw      []byte       // UTF-16 files: what was read, before it is narrowed into buf
	line     int          // line number of buf[0]
	count    int          // findings in this file
	seen     map[int]bool // lines already reported: one rule per line
	findings []Finding
}

// configExtensions name the files the config-file rules also read: where a docker config's
// "auths" or a kubeconfig's token is written (not source code, where those words are common).
var configExtensions = []string{"", ".json", ".yaml", ".yml", ".conf", ".cfg", ".config", ".ini", ".toml", ".txt", ".env",
	".properties", ".kubeconfig", ".dockerconfigjson", ".bak", ".old", ".orig"}

// configFile reports whether the config-file rules read the file name.
func configFile(name string) bool {
	return slices.Contains(configExtensions, strings.ToLower(path.Ext(name)))
}

// copyFile copies exactly size bytes of the file name from r to w, scanning them. A UTF-16
// file (utf16Order) is scanned as the text it holds (copyUTF16).
func (s *contentScanner) copyFile(name string, w io.Writer, r io.Reader, size int64) (int64, error) {
	s.name, s.line, s.count, s.config = name, 1, 0, configFile(name)
	clear(s.seen)
	if s.buf == nil {
		s.buf = make([]byte, lookbehind+lookahead+readChunk)
	}
	keep, from := 0, 0 // buf[:keep] carried over; buf[from:keep] not searched yet
	var n int64
	for n < size {
		m, err := io.ReadFull(r, s.buf[keep:keep+int(min(int64(len(s.buf)-keep), size-n))])
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return n + int64(m), shrank(n+int64(m), size)
		}
		if err != nil {
			return n, err
		}
		if _, err := w.Write(s.buf[keep : keep+m]); err != nil {
			return n, err
		}
		if n == 0 {
			if wide, bigEndian := utf16Order(s.buf[:m]); wide {
				if cap(s.raw) < len(s.buf) {
					s.raw = make([]byte, 0, len(s.buf))
				}
				s.raw = append(s.raw[:0], s.buf[:m]...)
				return s.copyUTF16(w, r, size, m, bigEndian)
			}
		}
		n += int64(m)
		keep, from = s.advance(from, keep+m, n == size)
	}
	return n, nil
}

// utf16Sniff is how many code units at a file's start tell UTF-16 without a byte-order mark.
const utf16Sniff = 256

// utf16Order reports whether b, the first bytes of a file, start UTF-16 text, and its byte
// order. A byte-order mark says so. Without one (.NET's Encoding.Unicode.GetBytes, Python's
// encode("utf-16-le"), iconv -t UTF-16LE, a program writing its WCHAR strings), three
// quarters at least of the first code units are printable ASCII with a NUL as their high
// byte: at odd offsets for little-endian, even for big-endian. A file with no NUL in its
// first block, nearly every text file, is told apart by one vectorised search.
func utf16Order(b []byte) (wide, bigEndian bool) {
	if len(b) >= 2 && (b[0] == 0xff && b[1] == 0xfe || b[0] == 0xfe && b[1] == 0xff) {
		return true, b[0] == 0xfe
	}
	b = b[:min(len(b), 2*utf16Sniff)&^1]
	if len(b) < 32 || bytes.IndexByte(b, 0) < 0 { // 16 code units: shorter than any token
		return false, false
	}
	little, big := 0, 0
	for i := 0; i < len(b); i += 2 {
		switch {
		case b[i+1] == 0 && isText(b[i]):
			little++
		case b[i] == 0 && isText(b[i+1]):
			big++
		}
	}
	units := len(b) / 2
	return max(little, big)*4 >= units*3, big > little
}

// isText reports whether c is printable ASCII or a tab or line break.
func isText(c byte) bool { return ' ' <= c && c <= '~' || c == '\t' || c == '\n' || c == '\r' }

// copyUTF16 goes on with a UTF-16 file (big-endian or not) whose first m bytes are in s.raw,
// written already: each code unit is narrowed to one byte into buf (ASCII as it is, anything
// else a byte no rule takes), so the rules and line numbers work on the text.
func (s *contentScanner) copyUTF16(w io.Writer, r io.Reader, size int64, m int, bigEndian bool) (int64, error) {
	n := int64(m)
	keep, from := 0, 0
	var odd []byte // a code unit cut by a read
	for {
		units := s.raw[:m]
		if len(odd) > 0 {
			units = append(odd, units...)
		}
		whole := len(units) &^ 1
		t := keep
		for i := 0; i < whole; i += 2 {
			u := uint16(units[i]) | uint16(units[i+1])<<8
			if bigEndian {
				u = uint16(units[i])<<8 | uint16(units[i+1])
			}
			if u >= 0x80 {
				u = 0x80
			}
			s.buf[t] = byte(u)
			t++
		}
		odd = append(odd[:0], units[whole:]...)
		keep, from = s.advance(from, t, n == size)
		if n == size {
			return n, nil
		}
		var err error
		m, err = io.ReadFull(r, s.raw[:cap(s.raw)][:min(int64(readChunk), size-n)])
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return n + int64(m), shrank(n+int64(m), size)
		}
		if err != nil {
			return n, err
		}
		if _, err := w.Write(s.raw[:m]); err != nil {
			return n, err
		}
		n += int64(m)
	}
}

func shrank(n, size int64) error {
	return fmt.Errorf("the file shrank while it was being packed (%d of %d bytes)", n, size)
}

// advance searches what buf[from:end] holds (all of it at the file's end, else what has its
// lookahead), then moves the bytes a later search needs to the front of buf: it returns how
// many (keep) and where the unsearched ones start.
func (s *contentScanner) advance(from, end int, last bool) (keep, next int) {
	limit := end - lookahead
	if last {
		limit = end
	}
	if limit <= from {
		return end, from
	}
	s.search(from, limit, end)
	drop := max(0, limit-lookbehind)
	s.line += bytes.Count(s.buf[:drop], []byte{'\n'})
	return copy(s.buf, s.buf[drop:end]), limit - drop
}

// search confirms the tokens that start in buf[from:limit]; buf[:end] is valid.
func (s *contentScanner) search(from, limit, end int) {
	b := s.buf[:end]
	for _, p := range passes {
		for at := from; at < limit; {
			j := bytes.IndexByte(b[at:limit], p.c)
			if j < 0 {
				break
			}
			i := at + j
			at = i + 1
			switch {
			case i > 0 && p.before[b[i-1]] != nil: // most stops end no token: one lookup decides
				for _, t := range p.before[b[i-1]] {
					s.try(b, i-t.at, t.prefix, t.rule)
				}
			case p.c == '-' && len(b)-i > 10 && b[i+1] == '-' && (bytes.HasPrefix(b[i:], []byte("-----BEGIN ")) || bytes.HasPrefix(b[i:], []byte("---- BEGIN "))):
				eol := min(len(b), i+100)
				if nl := bytes.IndexByte(b[i:eol], '\n'); nl >= 0 {
					eol = i + nl
				}
				if k := bytes.Index(b[i:eol], []byte("PRIVATE KEY")); k >= 0 {
					s.confirm(b, i+k, i, &ruleServiceAccount, &rulePrivateKey)
				}
			case p.c == 'J' && i >= 3 && b[i-3] == '.' && b[i-2] == 'e' && b[i-1] == 'y':
				s.confirm(b, i-3, i-3, &ruleJWT)
			}
		}
	}
	if s.config {
		s.eachPrefix(b, from, limit, configTokens)
	}
}

// eachPrefix confirms the rule of each prefix wherever the prefix starts in b[from:limit].
func (s *contentScanner) eachPrefix(b []byte, from, limit int, tokens []prefixToken) {
	for _, t := range tokens {
		for at := from; at < limit; {
			i := bytes.Index(b[at:min(len(b), limit+len(t.prefix)-1)], t.prefix)
			if i < 0 {
				break
			}
			s.confirm(b, at+i, at+i, t.rule)
			at += i + 1
		}
	}
}

// try confirms rule when prefix is at start.
func (s *contentScanner) try(b []byte, start int, prefix string, rule *contentRule) {
	if start >= 0 && len(b)-start >= len(prefix) && string(b[start:start+len(prefix)]) == prefix {
		s.confirm(b, start, start, rule)
	}
}

// confirm reports the first of rules that confirms the token at start; line is counted at at.
func (s *contentScanner) confirm(b []byte, start, at int, rules ...*contentRule) {
	back := b[max(0, start-lookbehind):start]
	ahead := b[start:min(len(b), start+lookahead)]
	for _, r := range rules {
		if r.confirm(back, ahead) {
			s.report(at, r)
			return
		}
	}
}

func (s *contentScanner) report(at int, r *contentRule) {
	line := s.line + bytes.Count(s.buf[:at], []byte{'\n'})
	if s.count >= maxFindingsPerFile || s.seen[line] {
		return
	}
	if s.seen == nil {
		s.seen = map[int]bool{}
	}
	s.seen[line] = true
	s.count++
	s.findings = append(s.findings, Finding{File: s.name, Line: line, Rule: r.id})
}
