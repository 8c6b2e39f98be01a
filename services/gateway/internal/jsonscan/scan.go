// Package jsonscan is a tiny, allocation-free JSON structure scanner, used
// where byte offsets are needed (splicing request bodies) or where a full
// decode would be wasteful (metering a completion reads two members of a
// body that is mostly generated text; cheap pre-checks on stream events).
// Every function is bounds-checked and returns -1 (or ok=false) on malformed
// input, so it is safe on arbitrary bytes, but for two that state their
// preconditions instead: AppendUnescaped takes only the inside of a string
// literal ScanString accepted, and ScanNumber a position inside b. Callers
// that need exact semantics check the whole value with Valid first.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
)

// Word-at-a-time helpers: strings (completion text) are most of a body's
// bytes, and these skip their plain bytes eight at a time instead of one.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasZero is non-zero when one of x's bytes is zero (exact as a boolean).
func hasZero(x uint64) uint64 { return (x - ones) & ^x & highs }

// quoteOrBackslash is non-zero when one of x's bytes is '"' or '\\'.
func quoteOrBackslash(x uint64) uint64 {
	return hasZero(x^(ones*'"')) | hasZero(x^(ones*'\\'))
}

// stringSpecial is non-zero when one of x's bytes is '"', '\\' or a
// control character (below 0x20: hasless(x, 0x20), exact as a boolean).
func stringSpecial(x uint64) uint64 {
	return quoteOrBackslash(x) | ((x - ones*0x20) & ^x & highs)
}

// SkipWS returns the index of the first non-whitespace byte at or after i.
// The common case, no whitespace at all, is inlined at the call site.
func SkipWS(b []byte, i int) int {
	if i < len(b) && b[i] > ' ' {
		return i
	}
	return skipWS(b, i)
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString expects b[i]=='"' and returns the index just past the closing
// quote, or -1.
func skipString(b []byte, i int) int {
	for i++; ; {
		// Find the next '"' or '\\': eight bytes at a time, then the lowest
		// flagged byte, which is exactly the first match.
		if i+8 <= len(b) {
			m := quoteOrBackslash(binary.LittleEndian.Uint64(b[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else {
			for i < len(b) && b[i] != '"' && b[i] != '\\' {
				i++
			}
			if i >= len(b) {
				return -1
			}
		}
		if b[i] == '"' {
			return i + 1
		}
		i += 2 // an escape: skip the escaped byte
	}
}

// SkipValue returns the index just past the JSON value starting at b[i]
// (which must not be whitespace), or -1.
func SkipValue(b []byte, i int) int {
	if i < 0 || i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				if i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	case '}', ']', ',', ':':
		return -1
	default:
		start := i
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ':', ' ', '\t', '\n', '\r':
				if i == start {
					return -1
				}
				return i
			}
			i++
		}
		return i
	}
}

// Member is one "key": value pair of an object, as byte offsets.
type Member struct {
	Key        []byte // raw key including quotes
	Start, End int    // value bounds
}

// NextMember reads the member at or after position i inside an object (i is
// just past '{' or just past the previous value). It returns the member, the
// position to continue from, and done=true at the closing '}' (pos is then
// just past it). ok=false on malformed input.
func NextMember(b []byte, i int, first bool) (m Member, pos int, done, ok bool) {
	i = SkipWS(b, i)
	if i >= len(b) {
		return m, -1, false, false
	}
	if b[i] == '}' {
		return m, i + 1, true, true
	}
	if !first {
		if b[i] != ',' {
			return m, -1, false, false
		}
		i = SkipWS(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		return m, -1, false, false
	}
	ke := skipString(b, i)
	if ke < 0 {
		return m, -1, false, false
	}
	m.Key = b[i:ke]
	i = SkipWS(b, ke)
	if i >= len(b) || b[i] != ':' {
		return m, -1, false, false
	}
	m.Start = SkipWS(b, i+1)
	m.End = SkipValue(b, m.Start)
	if m.End < 0 {
		return m, -1, false, false
	}
	return m, m.End, false, true
}

// KeyIs reports whether the raw quoted key equals name, honouring escapes.
// name must be ASCII without '"' or '\\' (a member name the code looks for).
// An escape makes a key's raw bytes longer than what they stand for, so a
// key of name's length is compared byte for byte and a shorter one cannot
// match; only a longer key with an escape is decoded.
func KeyIs(raw []byte, name string) bool {
	if len(raw) < 2 {
		return false
	}
	inner := raw[1 : len(raw)-1]
	switch {
	case len(inner) == len(name):
		return string(inner) == name
	case len(inner) < len(name) || bytes.IndexByte(inner, '\\') < 0:
		return false
	}
	var s string
	return json.Unmarshal(raw, &s) == nil && s == name
}

// Unquote returns the Go string of a raw JSON string value, or "" if the
// value is not a string.
func Unquote(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// HasNonNullKey reports whether data contains the quoted key (e.g.
// `"usage"`) followed by ':' and a value other than null, anywhere in the
// payload. Raw `"key"` bytes cannot occur inside a JSON string (quotes are
// escaped there), so a false positive is only possible for a nested key of
// the same name; callers then decode and apply exact top-level semantics.
func HasNonNullKey(data []byte, quotedKey string) bool {
	// Look for the key's rarest byte, then compare the key around it: '"'
	// is the most frequent byte in JSON, and a frequent letter (the 'u' of
	// "usage") costs one search call per occurrence in the text.
	k := anchor(quotedKey)
	c := quotedKey[k]
	for off := k; off < len(data); {
		j := bytes.IndexByte(data[off:], c)
		if j < 0 {
			return false
		}
		at := off + j - k // where the key would start
		off += j + 1
		if at+len(quotedKey) > len(data) || string(data[at:at+len(quotedKey)]) != quotedKey {
			continue
		}
		p := SkipWS(data, at+len(quotedKey))
		if p < len(data) && data[p] == ':' {
			p = SkipWS(data, p+1)
			if p < len(data) && !bytes.HasPrefix(data[p:], []byte("null")) {
				return true
			}
		}
	}
	return false
}

// letterFrequency orders lower-case letters from the most to the least
// frequent in English text, what JSON payloads mostly hold; letterRank is
// its inverse: letterRank[c-'a'] is 'a' + the rank of letter c.
const (
	letterFrequency = "etaoinsrhldcumfpgwybvkxjqz"
	letterRank      = "ctlkaoqiexvjnfdpyhgbmurwsz"
)

// anchor returns the index of the byte of quotedKey's name to search for:
// the one least frequent by letterFrequency (bytes other than lower-case
// letters count as rarer still), the first on a tie; 0 (the quote) for an
// empty name.
func anchor(quotedKey string) int {
	best, rank := 0, -1
	for i := 1; i < len(quotedKey)-1; i++ {
		r := len(letterFrequency)
		if c := quotedKey[i]; c >= 'a' && c <= 'z' {
			r = int(letterRank[c-'a'] - 'a')
		}
		if r > rank {
			best, rank = i, r
		}
	}
	return best
}

// NextElement reads the array element at or after position i (i is just
// past '[' or just past the previous element). It returns the element
// bounds, the position to continue from, and done=true at the closing ']'.
// ok=false on malformed input.
func NextElement(b []byte, i int, first bool) (start, end, pos int, done, ok bool) {
	i = SkipWS(b, i)
	if i >= len(b) {
		return 0, 0, -1, false, false
	}
	if b[i] == ']' {
		return 0, 0, i + 1, true, true
	}
	if !first {
		if b[i] != ',' {
			return 0, 0, -1, false, false
		}
		i = SkipWS(b, i+1)
	}
	end = SkipValue(b, i)
	if end < 0 {
		return 0, 0, -1, false, false
	}
	return i, end, end, false, true
}

// KeyName returns the raw key without quotes if it has no escapes, else its
// decoded form (allocating; keys with escapes do not occur in practice).
func KeyName(raw []byte) []byte {
	if len(raw) < 2 {
		return nil
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	return []byte(Unquote(raw))
}

// maxNesting bounds array/object depth in Valid (encoding/json's limit).
const maxNesting = 10000

// Valid reports whether b is exactly one valid JSON value (RFC 8259
// grammar, as json.Valid; like json.Valid it does not insist on valid
// UTF-8 inside strings). It is iterative and allocation-free for depths up
// to 64, and skips the bytes of long strings in a tight loop, which makes it
// several times faster than json.Valid on completion bodies.
func Valid(b []byte) bool { return validate(b, nil, nil) }

// ValidMembers is Valid that also calls f with the raw quoted key and the
// raw value of each member of a top-level object, in order, as it checks
// them: one pass instead of Valid and then EachMember. f may have been
// called when it returns false (the rest was invalid): callers keep what f
// saw only when it returns true.
func ValidMembers(b []byte, f func(key, val []byte)) bool { return validate(b, f, nil) }

// ValidMemberBounds is ValidMembers for callers that need the members'
// offsets (to splice the body): f gets each top-level member as a Member
// of b, with the same caveat when it returns false.
func ValidMemberBounds(b []byte, f func(m Member)) bool { return validate(b, nil, f) }

func validate(b []byte, f func(key, val []byte), fm func(m Member)) bool {
	// The top-level member being checked (reported to f or fm).
	keyStart, keyEnd, valStart := 0, 0, 0
	var small [64]byte
	stack := small[:0] // '{' or '[' of each open container
	i := SkipWS(b, 0)
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if len(stack) >= maxNesting {
				return false
			}
			stack = append(stack, c)
			i = SkipWS(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' or ']': empty container
				i++
				stack = stack[:len(stack)-1]
				break
			}
			if c == '{' {
				k := i
				ke, v := objectKey(b, i)
				if v < 0 {
					return false
				}
				if len(stack) == 1 {
					keyStart, keyEnd, valStart = k, ke, v
				}
				i = v
			}
			continue
		case c == '"':
			if i = validString(b, i); i < 0 {
				return false
			}
		case c == '-' || (c >= '0' && c <= '9'):
			if i = ScanNumber(b, i); i < 0 {
				return false
			}
		case c == 't' && bytes.HasPrefix(b[i:], []byte("true")):
			i += 4
		case c == 'f' && bytes.HasPrefix(b[i:], []byte("false")):
			i += 5
		case c == 'n' && bytes.HasPrefix(b[i:], []byte("null")):
			i += 4
		default:
			return false
		}
		// After a value: close containers or move to the next element.
		for {
			if len(stack) == 1 && stack[0] == '{' {
				if f != nil {
					f(b[keyStart:keyEnd], b[valStart:i])
				} else if fm != nil {
					fm(Member{Key: b[keyStart:keyEnd], Start: valStart, End: i})
				}
			}
			i = SkipWS(b, i)
			if len(stack) == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			top := stack[len(stack)-1]
			if b[i] == top+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return false
			}
			i = SkipWS(b, i+1)
			if top == '{' {
				k := i
				ke, v := objectKey(b, i)
				if v < 0 {
					return false
				}
				if len(stack) == 1 {
					keyStart, keyEnd, valStart = k, ke, v
				}
				i = v
			}
			break
		}
	}
}

// objectKey expects a member key at b[i]; it returns the end of the key
// (past its closing quote) and the start of the member's value (past the
// colon and whitespace), or val=-1.
func objectKey(b []byte, i int) (keyEnd, val int) {
	if i >= len(b) || b[i] != '"' {
		return 0, -1
	}
	if keyEnd = validString(b, i); keyEnd < 0 {
		return 0, -1
	}
	i = SkipWS(b, keyEnd)
	if i >= len(b) || b[i] != ':' {
		return 0, -1
	}
	return keyEnd, SkipWS(b, i+1)
}

// ScanNumber returns the index past the valid JSON number at b[i] (i <
// len(b)), or -1.
func ScanNumber(b []byte, i int) int {
	digits := func(i int) int {
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == s {
			return -1
		}
		return i
	}
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return -1
	}
	if b[i] == '0' {
		i++
	} else if i = digits(i); i < 0 {
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if i = digits(i + 1); i < 0 {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i = digits(i); i < 0 {
			return -1
		}
	}
	return i
}

// EachMember calls f with the unquoted key and raw value of every member of
// obj, which must be valid JSON (anything but an object yields no calls).
func EachMember(obj []byte, f func(key, val []byte)) {
	i := SkipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	pos, first := i+1, true
	for {
		m, next, done, ok := NextMember(obj, pos, first)
		if !ok || done {
			return
		}
		f(KeyName(m.Key), obj[m.Start:m.End])
		pos, first = next, false
	}
}

// Splice returns a new slice with b[from:to] replaced by s.
func Splice(b []byte, from, to int, s string) []byte {
	out := make([]byte, 0, len(b)-(to-from)+len(s))
	out = append(out, b[:from]...)
	out = append(out, s...)
	return append(out, b[to:]...)
}
