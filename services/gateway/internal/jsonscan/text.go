package jsonscan

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// The one place where the gateway turns JSON string literals into text and
// back: the policy engine (the text its rules read, and redactions written
// back into a body) and the stream framing (a completion's text) both use
// these.

// ScanString expects b[i]=='"' and returns the index just past the closing
// quote of a valid JSON string literal (-1 for control characters, bad
// escapes or no closing quote) and whether the literal holds an escape.
// Like json.Valid it does not insist on valid UTF-8.
func ScanString(b []byte, i int) (end int, esc bool) {
	for i++; ; {
		// Find the next '"', '\\' or control character: eight bytes at a
		// time, then the lowest flagged byte, which is exactly the first.
		if i+8 <= len(b) {
			m := stringSpecial(binary.LittleEndian.Uint64(b[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else {
			for i < len(b) && b[i] >= 0x20 && b[i] != '"' && b[i] != '\\' {
				i++
			}
			if i >= len(b) {
				return -1, esc
			}
		}
		switch b[i] {
		case '"':
			return i + 1, esc
		case '\\':
			esc = true
			i++
			if i >= len(b) {
				return -1, esc
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return -1, esc
				}
				for _, h := range b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1, esc
					}
				}
				i += 4
			default:
				return -1, esc
			}
			i++
		default: // a control character
			return -1, esc
		}
	}
}

// validString is ScanString's end alone.
func validString(b []byte, i int) int {
	end, _ := ScanString(b, i)
	return end
}

// AppendUnquoted appends the decoded text of lit, a raw JSON string literal
// (quotes included, as SkipValue delimits it), to dst. ok is false when lit
// is not a well-formed string literal; dst is then returned unchanged.
// Lone surrogate escapes decode to U+FFFD, as encoding/json does; raw bytes
// that are not valid UTF-8 are kept as they are (encoding/json would
// replace them), so that a character an upstream split across two stream
// events is whole again once their texts are joined.
func AppendUnquoted(dst, lit []byte) (out []byte, ok bool) {
	if len(lit) < 2 || lit[0] != '"' {
		return dst, false
	}
	if end, _ := ScanString(lit, 0); end != len(lit) {
		return dst, false
	}
	return AppendUnescaped(dst, lit[1:len(lit)-1]), true
}

// AppendUnescaped appends the decoded text of body, the inside of a string
// literal ScanString accepted (it is not checked again), to dst: escapes
// as AppendUnquoted decodes them, every other byte copied.
func AppendUnescaped(dst, body []byte) []byte {
	for i := 0; i < len(body); {
		if body[i] != '\\' {
			j := i + 1
			for j < len(body) && body[j] != '\\' {
				j++
			}
			dst = append(dst, body[i:j]...)
			i = j
			continue
		}
		switch c := body[i+1]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(body[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 <= len(body) && body[i] == '\\' && body[i+1] == 'u' {
					if d := utf16.DecodeRune(r, hex4(body[i+2:])); d != utf8.RuneError {
						r2 = d
						i += 6
					}
				}
				r = r2
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
		i += 2
	}
	return dst
}

// hex4 is the value of four hex digits ScanString checked.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// AppendQuoted appends s as a JSON string literal (quotes included) to dst:
// AppendEscaped between two quotes.
func AppendQuoted(dst, s []byte) []byte {
	dst = append(dst, '"')
	return append(AppendEscaped(dst, s), '"')
}

// AppendEscaped appends s as the inside of a JSON string literal: '"',
// '\\' and control characters are escaped, as are U+2028 and U+2029;
// invalid UTF-8 becomes \ufffd. Quoted, the result decodes back to s
// (modulo invalid UTF-8) with encoding/json.
func AppendEscaped(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		// skip 8 plain ASCII bytes at a time
		for i+8 <= len(s) {
			x := binary.LittleEndian.Uint64(s[i:])
			if x&highs != 0 || stringSpecial(x) != 0 {
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			var esc string
			switch {
			case r == utf8.RuneError && size == 1:
				esc = `\ufffd`
			case r == '\u2028':
				esc = `\u2028`
			case r == '\u2029':
				esc = `\u2029`
			default:
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, esc...)
			i += size
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	return append(dst, s[start:]...)
}
