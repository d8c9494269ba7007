package buildctx

import (
	"bytes"
	"fmt"
	"io"
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
	ruleStripe = contentRule{"stripe-secret-key", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[8:], isAlnum) >= 24
	}}
	ruleGoogleAPI = contentRule{"gcp-api-key", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[4:], isTokenChar) == 35
	}}
	ruleNPM = contentRule{"npm-token", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[4:], isAlnum) == 36
	}}
	rulePyPI = contentRule{"pypi-token", func(back, b []byte) bool {
		return bytes.HasPrefix(b, []byte("pypi-AgEIcHlwaS5vcmc")) && run(b[20:], isTokenChar) >= 50
	}}
	ruleAIKey = contentRule{"openai-or-anthropic-key", func(back, b []byte) bool {
		i := bytes.IndexByte(b[3:], '-') + 4
		return boundaryBefore(back) && run(b[i:], isTokenChar) >= 40
	}}
	ruleHuggingFace = contentRule{"huggingface-token", func(back, b []byte) bool {
		return boundaryBefore(back) && run(b[3:], isAlpha) == 34
	}}
)

// Where the rules look: most tokens hold a '_' or a '-' at a fixed place, so one pass over
// each of these bytes (vectorised IndexByte) finds them all; three prefixes have neither.
var (
	underscoreTokens = []struct {
		prefix string
		at     int // of the '_' the pass stops on
		rule   *contentRule
	}{
		{"ghp_", 3, &ruleGitHub}, {"gho_", 3, &ruleGitHub}, {"ghu_", 3, &ruleGitHub}, {"ghs_", 3, &ruleGitHub}, {"ghr_", 3, &ruleGitHub},
		{"github_pat_", 6, &ruleGitHubPAT}, {"sk_live_", 2, &ruleStripe}, {"rk_live_", 2, &ruleStripe},
		{"npm_", 3, &ruleNPM}, {"hf_", 2, &ruleHuggingFace},
	}
	dashTokens = []struct {
		prefix string
		at     int
		rule   *contentRule
	}{
		{"glpat-", 5, &ruleGitLab}, {"xoxb-", 4, &ruleSlack}, {"xoxa-", 4, &ruleSlack}, {"xoxp-", 4, &ruleSlack},
		{"xoxr-", 4, &ruleSlack}, {"xoxs-", 4, &ruleSlack}, {"xoxe-", 4, &ruleSlack},
		{"sk-proj-", 2, &ruleAIKey}, {"sk-ant-", 2, &ruleAIKey}, {"pypi-", 4, &rulePyPI}, {"PuTTY-User-Key-File-", 5, &rulePuTTY},
	}
	// underscoreBefore and dashBefore hold the bytes that come right before the '_' or '-'
	// of some token.
	underscoreBefore, dashBefore = func() (u, d [256]bool) {
		for _, t := range underscoreTokens {
			u[t.prefix[t.at-1]] = true
		}
		for _, t := range dashTokens {
			d[t.prefix[t.at-1]] = true
		}
		return u, d
	}()
	prefixTokens = []struct {
		prefix []byte
		rule   *contentRule
	}{
		{[]byte("AKIA"), &ruleAWS}, {[]byte("ASIA"), &ruleAWS}, {[]byte("AIza"), &ruleGoogleAPI},
	}
)

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

// maxFindingsPerFile keeps the message short when a file is full of keys.
const maxFindingsPerFile = 5

// contentScanner runs the content rules over each file as pack streams it, with no second
// read: it owns the read buffer, and keeps the last bytes of one read before the next so that
// a token or a rule's context may straddle reads.
type contentScanner struct {
	name     string
	buf      []byte
	line     int          // line number of buf[0]
	count    int          // findings in this file
	seen     map[int]bool // lines already reported: one rule per line
	findings []Finding
}

// copyFile copies exactly size bytes of the file name from r to w, scanning them.
func (s *contentScanner) copyFile(name string, w io.Writer, r io.Reader, size int64) (int64, error) {
	s.name, s.line, s.count = name, 1, 0
	clear(s.seen)
	if s.buf == nil {
		s.buf = make([]byte, lookbehind+lookahead+readChunk)
	}
	keep, from := 0, 0 // buf[:keep] carried over; buf[from:keep] not searched yet
	var n int64
	for n < size {
		m, err := io.ReadFull(r, s.buf[keep:keep+int(min(int64(len(s.buf)-keep), size-n))])
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return n + int64(m), fmt.Errorf("the file shrank while it was being packed (%d of %d bytes)", n+int64(m), size)
		}
		if err != nil {
			return n, err
		}
		if _, err := w.Write(s.buf[keep : keep+m]); err != nil {
			return n, err
		}
		n += int64(m)
		end := keep + m
		limit := end - lookahead
		if n == size {
			limit = end
		}
		if limit <= from {
			keep = end
			continue
		}
		s.search(from, limit, end)
		drop := max(0, limit-lookbehind)
		s.line += bytes.Count(s.buf[:drop], []byte{'\n'})
		keep = copy(s.buf, s.buf[drop:end])
		from = limit - drop
	}
	return n, nil
}

// search confirms the tokens that start in buf[from:limit]; buf[:end] is valid.
func (s *contentScanner) search(from, limit, end int) {
	b := s.buf[:end]
	s.eachByte(b, from, limit, '_', func(i int) {
		if i == 0 || !underscoreBefore[b[i-1]] { // most '_' end no token: one lookup decides
			return
		}
		for _, t := range underscoreTokens {
			s.try(b, i-t.at, t.prefix, t.rule)
		}
	})
	s.eachByte(b, from, limit, '-', func(i int) {
		if i+1 < len(b) && b[i+1] == '-' && (bytes.HasPrefix(b[i:], []byte("-----BEGIN ")) || bytes.HasPrefix(b[i:], []byte("---- BEGIN "))) {
			eol := min(len(b), i+100)
			if nl := bytes.IndexByte(b[i:eol], '\n'); nl >= 0 {
				eol = i + nl
			}
			if k := bytes.Index(b[i:eol], []byte("PRIVATE KEY")); k >= 0 {
				s.confirm(b, i+k, i, &ruleServiceAccount, &rulePrivateKey)
			}
			return
		}
		if i == 0 || !dashBefore[b[i-1]] {
			return
		}
		for _, t := range dashTokens {
			s.try(b, i-t.at, t.prefix, t.rule)
		}
	})
	for _, t := range prefixTokens {
		for at := from; at < limit; {
			i := bytes.Index(b[at:min(end, limit+len(t.prefix)-1)], t.prefix)
			if i < 0 {
				break
			}
			s.confirm(b, at+i, at+i, t.rule)
			at += i + 1
		}
	}
}

// eachByte calls fn with the index of every c in b[from:limit].
func (s *contentScanner) eachByte(b []byte, from, limit int, c byte, fn func(int)) {
	for at := from; at < limit; {
		i := bytes.IndexByte(b[at:limit], c)
		if i < 0 {
			return
		}
		fn(at + i)
		at += i + 1
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
