package policy

import (
	"bytes"
	"encoding/base64"
	"math"
)

// Secret detectors. Every secret starts with a distinctive literal
// ("AKIA", "ghp_", "sk-", "eyJ", "-----BEGIN ", "aws_secret_access_key",
// ...). The prefixes are part of the set's lexicon automaton (see
// lexicon.go), so finding them costs no pass of its own; each hit is
// verified by a hand-written checker (exact case, charset, length,
// boundaries) and, for random-bodied tokens, a randomness test that rejects
// documentation examples and placeholders: AWS's AKIAIOSFODNN7EXAMPLE,
// "sk-your-key-here", "ghp_xxxxxxxx…", low-entropy or sequential bodies.

type secretRule struct {
	prefix string
	check  func(t []byte, s int) (start, end int, k kind, ok bool)
}

var secretRules = func() []secretRule {
	var r []secretRule
	for _, p := range []string{"AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "APKA"} {
		r = append(r, secretRule{p, checkAWSAccessKey})
	}
	for _, p := range []string{"aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "aws_secret_key", "AWS_SECRET_KEY", "SecretAccessKey", "secretAccessKey"} {
		r = append(r, secretRule{p, checkAWSSecretKey})
	}
	r = append(r, secretRule{"AIza", checkGCPKey})
	r = append(r, secretRule{"-----BEGIN ", checkPrivateKey})
	for _, p := range []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"} {
		r = append(r, secretRule{p, checkGitHubToken})
	}
	r = append(r, secretRule{"github_pat_", checkGitHubPAT})
	r = append(r, secretRule{"glpat-", checkGitLabToken})
	r = append(r, secretRule{"sk-", checkSkKey})
	r = append(r, secretRule{"xox", checkSlackToken})
	r = append(r, secretRule{"hooks.slack.com/services/", checkSlackWebhook})
	r = append(r, secretRule{"sk_live_", checkStripeKey}, secretRule{"rk_live_", checkStripeKey})
	r = append(r, secretRule{"eyJ", checkJWT})
	r = append(r, secretRule{"npm_", checkNPMToken})
	return r
}()

func (st *evalState) collectSecrets(mask uint32) {
	st.ensureLex()
	for _, h := range st.sec {
		if mask&(1<<h.kind) != 0 {
			st.hits = append(st.hits, h)
		}
	}
}

// onSecretPrefix verifies a prefix hit at s (lexicon scan, in order of end
// position); hits inside an accepted secret are skipped.
func (st *evalState) onSecretPrefix(r *secretRule, s int) {
	t := st.text
	if s < st.secEnd || string(t[s:s+len(r.prefix)]) != r.prefix {
		return
	}
	if a, b, k, ok := r.check(t, s); ok && a >= st.secEnd {
		st.sec = append(st.sec, hit{a, b, k})
		st.secEnd = b
	}
}

func isB64URL(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }
func isB64Std(c byte) bool { return isAlnum(c) || c == '+' || c == '/' }

func spanOf(t []byte, i int, ok func(byte) bool) int {
	for i < len(t) && ok(t[i]) {
		i++
	}
	return i
}

// tokLeft: a token starts at s (not glued to a preceding identifier).
func tokLeft(t []byte, s int) bool {
	return s == 0 || !(isAlnum(t[s-1]) || t[s-1] == '_' || t[s-1] == '-')
}

func checkAWSAccessKey(t []byte, s int) (int, int, kind, bool) {
	e := spanOf(t, s+4, func(c byte) bool { return isUpper(c) || isDigit(c) })
	if !tokLeft(t, s) || e-s != 20 || (e < len(t) && isWordByte(t[e])) || !looksRandom(t[s+4:e], 2.5) {
		return 0, 0, 0, false
	}
	return s, e, kAWSAccessKey, true
}

// checkAWSSecretKey needs the key name right before: 40 base64 characters
// alone are far too common (hashes, ids) to flag on shape.
func checkAWSSecretKey(t []byte, s int) (int, int, kind, bool) {
	i := s
	for i < len(t) && (isAlpha(t[i]) || t[i] == '_') {
		i++
	}
	for n := 0; i < len(t) && n < 8 && (t[i] == ' ' || t[i] == '\t' || t[i] == '"' || t[i] == '\'' || t[i] == ':' || t[i] == '='); n++ {
		i++
	}
	e := spanOf(t, i, isB64Std)
	if e-i != 40 || (e < len(t) && t[e] == '=') {
		return 0, 0, 0, false
	}
	v := t[i:e]
	if d, u, l := classMix(v); d == 0 || u == 0 || l == 0 || !looksRandom(v, 4.0) {
		return 0, 0, 0, false
	}
	return i, e, kAWSSecretKey, true
}

func checkGCPKey(t []byte, s int) (int, int, kind, bool) {
	e := spanOf(t, s+4, isB64URL)
	if !tokLeft(t, s) || e-s != 39 || !looksRandom(t[s+4:e], 3.5) {
		return 0, 0, 0, false
	}
	return s, e, kGCPAPIKey, true
}

// checkPrivateKey accepts a PEM/PGP block whose label ends in PRIVATE KEY
// (or PRIVATE KEY BLOCK) and whose body holds at least 40 base64
// characters (so "-----BEGIN PRIVATE KEY-----\n...\n-----END…" templates
// pass). The match runs to the END line, or over the base64 body when the
// block is truncated.
func checkPrivateKey(t []byte, s int) (int, int, kind, bool) {
	h := s + len("-----BEGIN ")
	le := bytes.Index(t[h:min(len(t), h+64)], []byte("-----"))
	if le < 0 {
		return 0, 0, 0, false
	}
	label := t[h : h+le]
	if !bytes.HasSuffix(label, []byte("PRIVATE KEY")) && !bytes.HasSuffix(label, []byte("PRIVATE KEY BLOCK")) {
		return 0, 0, 0, false
	}
	bs := h + le + 5
	var be, end int
	if ei := bytes.Index(t[bs:min(len(t), bs+64<<10)], []byte("-----END ")); ei >= 0 {
		be = bs + ei
		end = be + len("-----END ")
		if ci := bytes.Index(t[end:min(len(t), end+64)], []byte("-----")); ci >= 0 {
			end += ci + 5
		}
	} else {
		be = spanOf(t, bs, func(c byte) bool { return isB64Std(c) || c == '=' || isSpace(c) })
		for be > bs && isSpace(t[be-1]) {
			be--
		}
		end = be
	}
	n := 0
	for _, c := range t[bs:be] {
		if isB64Std(c) {
			n++
		}
	}
	if n < 40 {
		return 0, 0, 0, false
	}
	return s, end, kPrivateKey, true
}

func checkGitHubToken(t []byte, s int) (int, int, kind, bool) {
	e := spanOf(t, s+4, isAlnum)
	body := t[s+4 : e]
	if !tokLeft(t, s) || len(body) < 36 || len(body) > 251 || (e < len(t) && isWordByte(t[e])) {
		return 0, 0, 0, false
	}
	if d, u, l := classMix(body); d == 0 || u+l == 0 || !looksRandom(body, 3.5) {
		return 0, 0, 0, false
	}
	return s, e, kGitHubToken, true
}

func checkGitHubPAT(t []byte, s int) (int, int, kind, bool) {
	e := spanOf(t, s+11, func(c byte) bool { return isAlnum(c) || c == '_' })
	body := t[s+11 : e]
	if !tokLeft(t, s) || len(body) < 50 || !looksRandom(body, 3.5) {
		return 0, 0, 0, false
	}
	return s, e, kGitHubToken, true
}

func checkGitLabToken(t []byte, s int) (int, int, kind, bool) {
	e := spanOf(t, s+6, isB64URL)
	body := t[s+6 : e]
	if !tokLeft(t, s) || len(body) < 20 || !looksRandom(body, 3.3) {
		return 0, 0, 0, false
	}
	return s, e, kGitLabToken, true
}

// checkSkKey handles "sk-…": Anthropic (sk-ant-…) and OpenAI keys (legacy,
// sk-proj-, sk-svcacct-, sk-admin-). The random part must be 32+
// characters mixing digits, upper and lower case, so prose ("task-",
// "sk-learn", "sk-this-is-my-key") and placeholders never match. TruePortAI
// keys (sk- + 40 base62) are reported as openai_key: they are secrets too.
func checkSkKey(t []byte, s int) (int, int, kind, bool) {
	if !tokLeft(t, s) {
		return 0, 0, 0, false
	}
	e := spanOf(t, s+3, isB64URL)
	body := t[s+3 : e]
	k := kOpenAIKey
	if bytes.HasPrefix(body, []byte("ant-")) {
		k = kAnthropicKey
		body = body[4:]
		// api03-, admin01-, oat01- …
		if d := bytes.IndexByte(body[:min(len(body), 12)], '-'); d > 0 {
			body = body[d+1:]
		}
	} else {
		for _, p := range []string{"proj-", "svcacct-", "admin-", "None-"} {
			if bytes.HasPrefix(body, []byte(p)) {
				body = body[len(p):]
				break
			}
		}
	}
	if len(body) < 32 {
		return 0, 0, 0, false
	}
	if d, u, l := classMix(body); d == 0 || u == 0 || l == 0 || !looksRandom(body, 3.5) {
		return 0, 0, 0, false
	}
	return s, e, k, true
}

func checkSlackToken(t []byte, s int) (int, int, kind, bool) {
	if s+5 > len(t) || bytes.IndexByte([]byte("abprse"), t[s+3]) < 0 || t[s+4] != '-' || !tokLeft(t, s) {
		return 0, 0, 0, false
	}
	e := spanOf(t, s+5, func(c byte) bool { return isAlnum(c) || c == '-' })
	body := t[s+5 : e]
	if len(body) < 15 || placeholderAlpha(body) {
		return 0, 0, 0, false
	}
	// xoxb-<team id>-<bot id>-<random>: numeric ids, then a random part
	last := body[bytes.LastIndexByte(body, '-')+1:]
	if d, _, _ := classMix(body); d < 6 || len(last) < 10 || sequential(last) || entropy(last) < 3.0 {
		return 0, 0, 0, false
	}
	return s, e, kSlackToken, true
}

func checkSlackWebhook(t []byte, s int) (int, int, kind, bool) {
	p := s + len("hooks.slack.com/services/")
	e := spanOf(t, p, func(c byte) bool { return isAlnum(c) || c == '/' })
	parts := bytes.Split(t[p:e], []byte("/"))
	if len(parts) < 3 || len(parts[0]) < 2 || parts[0][0] != 'T' || len(parts[1]) < 2 || parts[1][0] != 'B' ||
		len(parts[2]) < 16 || !looksRandom(parts[2], 3.0) {
		return 0, 0, 0, false
	}
	start := s
	if s >= 8 && string(t[s-8:s]) == "https://" {
		start = s - 8
	}
	return start, e, kSlackWebhook, true
}

func checkStripeKey(t []byte, s int) (int, int, kind, bool) {
	e := spanOf(t, s+8, isAlnum)
	body := t[s+8 : e]
	if !tokLeft(t, s) || len(body) < 20 || (e < len(t) && isWordByte(t[e])) {
		return 0, 0, 0, false
	}
	if d, _, _ := classMix(body); d == 0 || !looksRandom(body, 3.5) {
		return 0, 0, 0, false
	}
	return s, e, kStripeKey, true
}

func checkNPMToken(t []byte, s int) (int, int, kind, bool) {
	e := spanOf(t, s+4, isAlnum)
	body := t[s+4 : e]
	if !tokLeft(t, s) || len(body) != 36 || (e < len(t) && isWordByte(t[e])) {
		return 0, 0, 0, false
	}
	if d, _, _ := classMix(body); d == 0 || !looksRandom(body, 3.5) {
		return 0, 0, 0, false
	}
	return s, e, kNPMToken, true
}

// checkJWT accepts header.payload.signature where header and payload are
// base64url JSON objects ("eyJ" = `{"`) and the header names an "alg".
func checkJWT(t []byte, s int) (int, int, kind, bool) {
	if s > 0 && (isB64URL(t[s-1]) || t[s-1] == '.') {
		return 0, 0, 0, false
	}
	e1 := spanOf(t, s, isB64URL)
	if e1 >= len(t) || t[e1] != '.' || e1-s > 1024 {
		return 0, 0, 0, false
	}
	p := e1 + 1
	e2 := spanOf(t, p, isB64URL)
	if e2-p < 10 || !bytes.HasPrefix(t[p:], []byte("eyJ")) || e2 >= len(t) || t[e2] != '.' {
		return 0, 0, 0, false
	}
	e3 := spanOf(t, e2+1, isB64URL)
	if e3 < len(t) && t[e3] == '.' {
		return 0, 0, 0, false // JWE or something longer
	}
	var buf [768]byte
	n, err := base64.RawURLEncoding.Decode(buf[:], bytes.TrimRight(t[s:e1], "="))
	if err != nil || !bytes.Contains(buf[:n], []byte(`"alg"`)) {
		return 0, 0, 0, false
	}
	return s, e3, kJWT, true
}

// ---- randomness ----

// placeholderWords mark documentation examples and templates.
var placeholderWords = []string{
	"example", "sample", "dummy", "fake", "placeholder", "your", "xxxx", "test", "redacted",
	"changeme", "secret", "insert", "replace", "abcd",
}

// placeholder: a placeholder word or an obvious digit run.
func placeholder(b []byte) bool {
	return placeholderAlpha(b) || bytes.Contains(b, []byte("0000")) || bytes.Contains(b, []byte("1234"))
}

func placeholderAlpha(b []byte) bool {
	for _, w := range placeholderWords {
		if containsFold(b, w) {
			return true
		}
	}
	return false
}

// looksRandom: no placeholder words, not mostly sequential/repeated
// characters, and Shannon entropy of at least minBits per character.
func looksRandom(b []byte, minBits float64) bool {
	return !placeholder(b) && !sequential(b) && entropy(b) >= minBits
}

func sequential(b []byte) bool {
	if len(b) < 2 {
		return true
	}
	n := 0
	for i := 1; i < len(b); i++ {
		d := int(b[i]) - int(b[i-1])
		if d >= -1 && d <= 1 {
			n++
		}
	}
	return n*2 >= len(b)-1
}

func entropy(b []byte) float64 {
	var cnt [256]uint16
	for _, c := range b {
		cnt[c]++
	}
	h := 0.0
	n := float64(len(b))
	for _, c := range cnt {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

func classMix(b []byte) (digits, upper, lower int) {
	for _, c := range b {
		switch {
		case isDigit(c):
			digits++
		case isUpper(c):
			upper++
		case isLower(c):
			lower++
		}
	}
	return
}
