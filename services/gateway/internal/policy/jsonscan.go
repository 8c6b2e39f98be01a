package policy

import (
	"encoding/binary"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"trueportai/services/gateway/internal/textpath"
)

// Text extraction walks the JSON body once with a strict, allocation-free
// scanner (it accepts exactly what encoding/json accepts) while following a
// small trie of the paths that carry prompt or completion text for the
// provider and direction. String values on text paths are decoded into one
// buffer (joined with "\n"); their raw byte ranges in the body are kept so
// that redaction can splice re-encoded strings back in, leaving every other
// byte of the body untouched (numbers, key order, whitespace, unknown fields).

// segment is one extracted string: its raw JSON literal in the body
// (quotes included) and its decoded text in st.text.
type segment struct {
	rawStart, rawEnd   int
	textStart, textEnd int
	system             bool
}

type frame struct {
	node     int32
	arr      bool
	system   bool // message role is system/developer
	segStart int
}

// parseJSON extracts text along t. It returns false (with partial state)
// when the body is not valid JSON.
func (st *evalState) parseJSON(b []byte, t *textpath.Trie) bool {
	const (
		sValue = iota
		sAfter
		sKey
	)
	n := len(b)
	i := 0
	node := int32(0)
	state := sValue
	for {
		switch state {
		case sValue:
			i = skipWS(b, i)
			if i >= n {
				return false
			}
			c := b[i]
			switch {
			case c == '{':
				st.stack = append(st.stack, frame{node: node, segStart: len(st.segs)})
				i = skipWS(b, i+1)
				if i < n && b[i] == '}' {
					i++
					st.closeObject(t)
					state = sAfter
				} else {
					state = sKey
				}
			case c == '[':
				st.stack = append(st.stack, frame{node: node, arr: true})
				i = skipWS(b, i+1)
				if i < n && b[i] == ']' {
					i++
					st.stack = st.stack[:len(st.stack)-1]
					state = sAfter
				} else if node >= 0 {
					node = t.Elem(node)
				}
			case c == '"':
				end, esc := scanString(b, i)
				if end < 0 {
					return false
				}
				if node >= 0 && t.Flags(node) != 0 {
					st.onString(t, node, b, i, end, esc)
				}
				i = end
				state = sAfter
			case c == '-' || (c >= '0' && c <= '9'):
				end := scanNumber(b, i)
				if end < 0 {
					return false
				}
				if node >= 0 && t.Flags(node)&textpath.MaxOut != 0 {
					st.onMaxOut(t.Name(node), b[i:end])
				}
				i = end
				state = sAfter
			case c == 't':
				if !hasLit(b, i, "true") {
					return false
				}
				i += 4
				state = sAfter
			case c == 'f':
				if !hasLit(b, i, "false") {
					return false
				}
				i += 5
				state = sAfter
			case c == 'n':
				if !hasLit(b, i, "null") {
					return false
				}
				i += 4
				state = sAfter
			default:
				return false
			}
		case sAfter:
			if len(st.stack) == 0 {
				return skipWS(b, i) == n
			}
			i = skipWS(b, i)
			if i >= n {
				return false
			}
			top := &st.stack[len(st.stack)-1]
			c := b[i]
			i++
			if top.arr {
				switch c {
				case ',':
					node = -1
					if top.node >= 0 {
						node = t.Elem(top.node)
					}
					state = sValue
				case ']':
					st.stack = st.stack[:len(st.stack)-1]
				default:
					return false
				}
				continue
			}
			switch c {
			case ',':
				state = sKey
			case '}':
				st.closeObject(t)
			default:
				return false
			}
		case sKey:
			i = skipWS(b, i)
			if i >= n || b[i] != '"' {
				return false
			}
			end, esc := scanString(b, i)
			if end < 0 {
				return false
			}
			node = -1
			if top := st.stack[len(st.stack)-1].node; top >= 0 {
				key := b[i+1 : end-1]
				if esc {
					st.keybuf = appendUnescaped(st.keybuf[:0], key)
					key = st.keybuf
				}
				node = t.Child(top, key)
			}
			i = skipWS(b, end)
			if i >= n || b[i] != ':' {
				return false
			}
			i++
			state = sValue
		}
	}
}

func (st *evalState) closeObject(t *textpath.Trie) {
	f := st.stack[len(st.stack)-1]
	st.stack = st.stack[:len(st.stack)-1]
	if f.system && f.node >= 0 && t.Flags(f.node)&textpath.Msg != 0 {
		for j := f.segStart; j < len(st.segs); j++ {
			st.segs[j].system = true
		}
	}
}

func (st *evalState) onString(t *textpath.Trie, node int32, b []byte, start, end int, esc bool) {
	f := t.Flags(node)
	raw := b[start+1 : end-1]
	if f&textpath.Text != 0 {
		if len(st.segs) > 0 {
			st.text = append(st.text, '\n')
		}
		ts := len(st.text)
		if esc {
			st.text = appendUnescaped(st.text, raw)
		} else {
			st.text = append(st.text, raw...)
		}
		st.segs = append(st.segs, segment{rawStart: start, rawEnd: end, textStart: ts, textEnd: len(st.text), system: f&textpath.System != 0})
	}
	if f&textpath.Role != 0 && len(st.stack) > 0 {
		v := raw
		if esc {
			st.keybuf = appendUnescaped(st.keybuf[:0], raw)
			v = st.keybuf
		}
		st.stack[len(st.stack)-1].system = string(v) == "system" || string(v) == "developer"
	}
	if f&textpath.Model != 0 && len(st.stack) == 1 {
		// decoded lazily by modelName (usually Input.Model is set)
		st.bodyModelAt, st.bodyModelEnd, st.bodyModelEsc = start+1, end-1, esc
	}
}

func (st *evalState) onMaxOut(field string, num []byte) {
	v, err := strconv.ParseFloat(string(num), 64)
	if err != nil { // out of range: treat as huge
		v = 1e308
	}
	if !st.maxOutSet || v > st.maxOut {
		st.maxOut, st.maxOutSet, st.maxOutField = v, true, field
	}
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

func hasLit(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// scanString validates the string literal starting at b[i] == '"' and
// returns the index after its closing quote (-1 if invalid) and whether it
// contains escapes.
func scanString(b []byte, i int) (int, bool) {
	esc := false
	for j := i + 1; j < len(b); {
		// skip 8 plain bytes at a time
		for j+8 <= len(b) && !strSpecial8(binary.LittleEndian.Uint64(b[j:])) {
			j += 8
		}
		if j >= len(b) {
			break
		}
		c := b[j]
		switch {
		case c == '"':
			return j + 1, esc
		case c == '\\':
			esc = true
			if j+1 >= len(b) {
				return -1, esc
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) || !isHex4(b[j+2:j+6]) {
					return -1, esc
				}
				j += 6
			default:
				return -1, esc
			}
		case c < 0x20:
			return -1, esc
		default:
			j++
		}
	}
	return -1, esc
}

// strSpecial8 reports whether any of the 8 bytes in x is '"', '\\' or a
// control character (< 0x20), using SWAR zero-byte tests.
func strSpecial8(x uint64) bool {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	hasZero := func(v uint64) uint64 { return (v - ones) &^ v & high }
	return (hasZero(x^(ones*'"')) | hasZero(x^(ones*'\\')) | ((x - ones*0x20) &^ x & high)) != 0
}

func isHex4(h []byte) bool {
	for _, c := range h[:4] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

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

// scanNumber validates a JSON number at b[i] and returns its end, or -1.
func scanNumber(b []byte, i int) int {
	n := len(b)
	if b[i] == '-' {
		i++
	}
	if i >= n {
		return -1
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < n && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		return -1
	}
	if i < n && b[i] == '.' {
		i++
		s := i
		for i < n && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == s {
			return -1
		}
	}
	if i < n && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < n && (b[i] == '+' || b[i] == '-') {
			i++
		}
		s := i
		for i < n && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == s {
			return -1
		}
	}
	return i
}

// appendUnescaped decodes the body of a valid JSON string literal like
// encoding/json does (invalid surrogates become U+FFFD; raw bytes,
// including invalid UTF-8, are copied).
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		switch c := s[i+1]; c {
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
			r := hex4(s[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if d := utf16.DecodeRune(r, hex4(s[i+2:])); d != utf8.RuneError {
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

// appendEscaped appends s as the inside of a JSON string literal. Invalid
// UTF-8 becomes \ufffd, as encoding/json would.
func appendEscaped(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		// skip 8 plain ASCII bytes at a time
		for i+8 <= len(s) {
			x := binary.LittleEndian.Uint64(s[i:])
			if x&0x8080808080808080 != 0 || strSpecial8(x) {
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
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
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
