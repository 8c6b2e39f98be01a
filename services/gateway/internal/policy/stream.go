package policy

import (
	"regexp/syntax"
	"unicode/utf8"
)

// Response rules on streams (docs/decisions.md, "Response rules on
// streams"). A stream's text arrives in pieces; the proxy holds back the
// last bytes of each text, as few as the rules in force allow, and releases
// what can no longer be part of a match. StreamHold says how many; ScanText
// finds the enforce-mode block and redact matches of a window of text.

// Stream window limits, in bytes.
const (
	// StreamHoldCap bounds the text held back for one rule set: rules
	// whose matches may be longer (unbounded regexes, JWTs, long keys)
	// are enforced on what fits; a longer match is redacted from the
	// point where it is recognised (its first StreamHoldCap bytes may
	// have passed) and blocks when recognised.
	StreamHoldCap = 4096
	// StreamRightContext is what a detector may look at past the end of a
	// match (word boundaries, digit groups); it is added to every hold.
	StreamRightContext = 16
	// StreamLeftContext is the released text kept before the held text,
	// for detectors that look before a match ("ssn", "https://", word
	// boundaries). An e-mail inside a URL token longer than this is
	// redacted in a stream (it is left alone in a whole body).
	StreamLeftContext = 256
)

// Upper bounds of match lengths (bytes) per detector kind: the length by
// which a detector has recognised its match. Kinds that match any length
// past a minimum (API keys, tokens, PEM blocks) are recognised by then and
// grow afterwards; the proxy keeps redacting a match that grows.
var kindSpan = [numKinds]int{
	kEmail: 64 + 1 + 255, kPhone: 32, kCreditCard: 24, kUSSSN: 11, kIBAN: 42, kIPv4: 15,
	kAWSAccessKey: 20, kAWSSecretKey: 80, kGCPAPIKey: 39, kPrivateKey: 256, kGitHubToken: 256,
	kGitLabToken: 128, kOpenAIKey: 128, kAnthropicKey: 128, kSlackToken: 128, kSlackWebhook: 160,
	kStripeKey: 128, kJWT: 1024, kNPMToken: 40,
}

// injectionSpan bounds a prompt-injection phrase (a few words).
const injectionSpan = 512

// StreamHold returns how many bytes of a streamed response's text must be
// held back for the enforce-mode block and redact response rules that apply
// to in (direction and scope; Body is ignored), and whether any applies.
// Flag and shadow rules need no hold: they are evaluated on the whole text
// at the end.
func (s *Set) StreamHold(in Input) (hold int, enforce bool) {
	if s == nil || len(s.rules) == 0 {
		return 0, false
	}
	in.Body, in.Raw, in.Direction = nil, true, DirectionResponse
	st := statePool.Get().(*evalState)
	st.reset(&in, dirResponse, s.lex)
	for i := range s.rules {
		r := &s.rules[i]
		if !r.streamEnforced() || !r.scope.match(st) {
			continue
		}
		enforce = true
		hold = max(hold, r.maxSpan())
	}
	st.release()
	statePool.Put(st)
	if !enforce {
		return 0, false
	}
	return min(hold+StreamRightContext, StreamHoldCap), true
}

// RespondsTo reports whether any response rule (flag and shadow included)
// applies to in (direction and scope; Body is ignored).
func (s *Set) RespondsTo(in Input) bool {
	if !s.HasResponseRules() {
		return false
	}
	in.Body, in.Raw, in.Direction = nil, true, DirectionResponse
	st := statePool.Get().(*evalState)
	st.reset(&in, dirResponse, s.lex)
	found := false
	for i := range s.rules {
		if r := &s.rules[i]; r.dirs&dirResponse != 0 && r.scope.match(st) {
			found = true
			break
		}
	}
	st.release()
	statePool.Put(st)
	return found
}

func (cr *compiledRule) streamEnforced() bool {
	return cr.dirs&dirResponse != 0 && !cr.shadow && cr.action != actFlag
}

// maxSpan bounds the length of the rule's matches (StreamHoldCap when it
// has none).
func (cr *compiledRule) maxSpan() int {
	n := 0
	switch cr.typ {
	case rtKeyword:
		for _, p := range cr.kwPats {
			n = max(n, len(p))
		}
	case rtRegex:
		if re, err := syntax.Parse(cr.re.String(), syntax.Perl); err == nil {
			if m, ok := regexSpan(re); ok {
				return min(m, StreamHoldCap)
			}
		}
		return StreamHoldCap
	case rtPII, rtSecrets:
		for k := kEmail; k <= kNPMToken; k++ {
			if cr.kinds&(1<<k) != 0 {
				n = max(n, kindSpan[k])
			}
		}
	case rtInjection:
		n = injectionSpan
	}
	return n
}

// regexSpan bounds the bytes a regular expression can match; ok=false when
// it is unbounded (*, +, {n,}).
func regexSpan(re *syntax.Regexp) (int, bool) {
	const limit = 1 << 20
	switch re.Op {
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 {
				n += utf8.UTFMax // case folding reaches other widths (k, K, U+212A)
			} else {
				n += max(utf8.RuneLen(r), 1)
			}
		}
		return n, true
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return 0, true
		}
		switch hi := re.Rune[len(re.Rune)-1]; {
		case hi > 0xffff:
			return 4, true
		case hi > 0x7ff:
			return 3, true
		case hi >= utf8.RuneSelf:
			return 2, true
		}
		return 1, true
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return utf8.UTFMax, true
	case syntax.OpCapture, syntax.OpQuest:
		return regexSpan(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus:
		return 0, false
	case syntax.OpRepeat:
		if re.Max < 0 {
			return 0, false
		}
		n, ok := regexSpan(re.Sub[0])
		if !ok || n*re.Max > limit {
			return 0, false
		}
		return n * re.Max, true
	case syntax.OpConcat, syntax.OpAlternate:
		total := 0
		for _, sub := range re.Sub {
			n, ok := regexSpan(sub)
			if !ok {
				return 0, false
			}
			if re.Op == syntax.OpConcat {
				total += n
			} else {
				total = max(total, n)
			}
			if total > limit {
				return 0, false
			}
		}
		return total, true
	}
	return 0, true // empty-width assertions, empty match, no match
}

// StreamSpan is an enforce-mode match in a window of stream text (byte
// offsets into ScanText's input).
type StreamSpan struct {
	Start, End int
	// Block is set for a match of a block rule; otherwise the span is a
	// redaction (overlapping ones merged) replaced by Label.
	Block bool
	Label string
}

// ScanText finds the matches of the enforce-mode block and redact response
// rules that apply to in (in.Body is plain text: a window of a stream's
// text) and appends them to dst: block matches first (in rule order), then
// the merged redaction spans in text order. Flag and shadow rules are not
// evaluated.
func (s *Set) ScanText(in Input, dst []StreamSpan) []StreamSpan {
	if s == nil || len(s.rules) == 0 || len(in.Body) == 0 {
		return dst
	}
	in.Raw, in.Direction = true, DirectionResponse
	st := statePool.Get().(*evalState)
	st.reset(&in, dirResponse, s.lex)
	for i := range s.rules {
		r := &s.rules[i]
		if !r.streamEnforced() || !r.scope.match(st) {
			continue
		}
		if _, ok := r.evaluate(st); !ok || r.action != actBlock {
			continue
		}
		for _, h := range st.hits {
			dst = append(dst, StreamSpan{Start: h.start, End: h.end, Block: true})
		}
	}
	for _, sp := range mergeSpans(st.spans) {
		dst = append(dst, StreamSpan{Start: sp.start, End: sp.end, Label: sp.label})
	}
	st.release()
	statePool.Put(st)
	return dst
}
