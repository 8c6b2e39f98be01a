package jsonscan

import (
	"unicode/utf16"
	"unicode/utf8"
)

// AppendUnquoted appends the decoded text of lit, a raw JSON string literal
// (quotes included, as SkipValue delimits it), to dst. ok is false when lit
// is not a well-formed string literal; dst is then returned unchanged.
// Lone surrogate escapes decode to U+FFFD, as encoding/json does; raw bytes
// that are not valid UTF-8 are kept as they are (encoding/json would
// replace them), so that a character an upstream split across two stream
// events is whole again once their texts are joined.
func AppendUnquoted(dst, lit []byte) (out []byte, ok bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return dst, false
	}
	n := len(dst)
	s := lit[1 : len(lit)-1]
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return dst[:n], false
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				dst = append(dst, e)
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
				r, good := hex4(s, i+2)
				if !good {
					return dst[:n], false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					r2 := utf8.RuneError
					if r3, good := hex4(s, i+2); good && i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if d := utf16.DecodeRune(r, r3); d != utf8.RuneError {
							r2 = d
							i += 6
						}
					}
					r = r2
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default:
				return dst[:n], false
			}
			i += 2
		case c == '"' || c < 0x20:
			return dst[:n], false
		case c < utf8.RuneSelf:
			j := i + 1
			for j < len(s) && s[j] < utf8.RuneSelf && s[j] >= 0x20 && s[j] != '\\' && s[j] != '"' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
		default:
			_, size := utf8.DecodeRune(s[i:])
			dst = append(dst, s[i:i+size]...)
			i += size
		}
	}
	return dst, true
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// AppendQuoted appends s as a JSON string literal (quotes included) to dst:
// '"', '\\' and control characters are escaped, as are U+2028 and U+2029;
// invalid UTF-8 becomes \ufffd. The result decodes back to s (modulo
// invalid UTF-8) with encoding/json.
func AppendQuoted(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
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
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			switch r {
			case '\u2028':
				dst = append(dst, `\u2028`...)
			case '\u2029':
				dst = append(dst, `\u2029`...)
			default:
				dst = append(dst, `\ufffd`...)
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
