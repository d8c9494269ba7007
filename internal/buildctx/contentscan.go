package buildctx

import (
	"bytes"
)

// The content scan of the secrets guard looks at every byte Pack streams, in the same pass:
// a few fixed keywords are searched (bytes.Index: vectorised, about memory speed), and only
// where one occurs does a rule look closely. Rules are the field's usual ones (gitleaks' own
// for these tokens), kept to what is specific enough never to flag ordinary source.

// contentRule confirms a keyword hit: b starts at the keyword, with at least lookahead bytes
// after it unless the file ends sooner, and back holds up to lookbehind bytes before it.
type contentRule struct {
	id       string
	keywords []string
	confirm  func(back, b []byte) bool
}

const (
	lookahead  = 1024 // bytes after a keyword a rule may need
	lookbehind = 64   // bytes before it
)

var contentRules = []contentRule{
	{id: "service-account-key", keywords: []string{"PRIVATE KEY"}, confirm: func(back, b []byte) bool {
		return bytes.Contains(back, []byte(`"private_key"`)) && privateKeyBlock(back, b)
	}},
	{id: "private-key", keywords: []string{"PRIVATE KEY"}, confirm: privateKeyBlock},
	{id: "putty-private-key", keywords: []string{"PuTTY-User-Key-File-"}, confirm: func(back, b []byte) bool {
		return len(b) > 21 && isDigit(b[20]) && b[21] == ':'
	}},
	{id: "aws-access-key-id", keywords: []string{"AKIA", "ASIA", "ABIA", "ACCA"}, confirm: func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[4:], isUpperOrDigit) == 16 && !bytes.HasPrefix(b[13:], []byte("EXAMPLE"))
	}},
	{id: "github-token", keywords: []string{"gh"}, confirm: func(back, b []byte) bool {
		return len(b) > 4 && bytes.IndexByte([]byte("pousr"), b[2]) >= 0 && b[3] == '_' && boundaryBefore(back) && run(b[4:], isAlnum) >= 36
	}},
	{id: "github-fine-grained-token", keywords: []string{"github_pat_"}, confirm: func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[11:], isWord) >= 82
	}},
	{id: "gitlab-token", keywords: []string{"glpat-"}, confirm: func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[6:], isTokenChar) >= 20
	}},
	{id: "slack-token", keywords: []string{"xox"}, confirm: func(back, b []byte) bool {
		return len(b) > 5 && bytes.IndexByte([]byte("abeprs"), b[3]) >= 0 && b[4] == '-' && boundaryBefore(back) && run(b[5:], isTokenChar) >= 10
	}},
	{id: "slack-webhook", keywords: []string{"hooks.slack.com/services/"}, confirm: func(back, b []byte) bool {
		return run(b[25:], func(c byte) bool { return isAlnum(c) || c == '/' }) >= 40
	}},
	{id: "stripe-secret-key", keywords: []string{"k_live_"}, confirm: func(back, b []byte) bool {
		return len(back) > 0 && (back[len(back)-1] == 's' || back[len(back)-1] == 'r') && boundaryBefore(back[:len(back)-1]) && run(b[7:], isAlnum) >= 24
	}},
	{id: "gcp-api-key", keywords: []string{"AIza"}, confirm: func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[4:], isTokenChar) == 35
	}},
	{id: "npm-token", keywords: []string{"npm_"}, confirm: func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[4:], isAlnum) == 36
	}},
	{id: "pypi-token", keywords: []string{"pypi-AgEIcHlwaS5vcmc"}, confirm: func(back, b []byte) bool {
		return run(b[20:], isTokenChar) >= 50
	}},
	{id: "openai-or-anthropic-key", keywords: []string{"sk-proj-", "sk-ant-"}, confirm: func(back, b []byte) bool {
		i := bytes.IndexByte(b[3:], '-') + 4
		return boundaryBefore(back) && run(b[i:], isTokenChar) >= 40
	}},
	{id: "huggingface-token", keywords: []string{"hf_"}, confirm: func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[3:], isAlpha) == 34
	}},
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

// boundaryBefore reports whether a token may start right after back.
func boundaryBefore(back []byte) bool {
	return len(back) == 0 || !isTokenChar(back[len(back)-1])
}

type keyword struct {
	text []byte
	rule *contentRule
}

var keywords = func() []keyword {
	var out []keyword
	for i := range contentRules {
		for _, k := range contentRules[i].keywords {
			out = append(out, keyword{[]byte(k), &contentRules[i]})
		}
	}
	return out
}()

// maxFindingsPerFile keeps the message short when a file is full of keys.
const maxFindingsPerFile = 5

// contentScanner runs the content rules over one file as it streams past, with no second read:
// it keeps a window of the last bytes so that a keyword or a rule's context may straddle reads.
type contentScanner struct {
	name     string
	buf      []byte // window: buf[:from] was searched already and is kept as lookbehind
	from     int
	line     int          // line number of buf[0]
	count    int          // findings in this file
	seen     map[int]bool // lines already reported: one rule per line
	findings []Finding
}

func (s *contentScanner) reset(name string) {
	s.name, s.buf, s.from, s.line, s.count = name, s.buf[:0], 0, 1, 0
	clear(s.seen)
}

// Write takes the next bytes of the file.
func (s *contentScanner) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	if limit := len(s.buf) - lookahead; limit > s.from {
		s.search(limit)
	}
	return len(p), nil
}

// finish searches what is left once the file has ended.
func (s *contentScanner) finish() {
	s.search(len(s.buf))
}

// search confirms the keyword hits starting in buf[from:limit], then slides the window.
func (s *contentScanner) search(limit int) {
	for k := range keywords {
		kw := &keywords[k]
		for at := s.from; at < limit; {
			i := bytes.Index(s.buf[at:], kw.text)
			if i < 0 || at+i >= limit {
				break
			}
			at += i
			back := s.buf[max(0, at-lookbehind):at]
			end := min(len(s.buf), at+lookahead)
			if kw.rule.confirm(back, s.buf[at:end:end]) {
				s.report(at, kw.rule)
			}
			at++
		}
	}
	keep := max(0, limit-lookbehind)
	s.line += bytes.Count(s.buf[:keep], []byte{'\n'})
	s.buf = s.buf[:copy(s.buf, s.buf[keep:])]
	s.from = limit - keep
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
