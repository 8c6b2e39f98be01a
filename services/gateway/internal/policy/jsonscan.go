package policy

import (
	"strconv"

	"trueportai/services/gateway/internal/jsonscan"
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
			i = jsonscan.SkipWS(b, i)
			if i >= n {
				return false
			}
			c := b[i]
			switch {
			case c == '{':
				st.stack = append(st.stack, frame{node: node, segStart: len(st.segs)})
				i = jsonscan.SkipWS(b, i+1)
				if i < n && b[i] == '}' {
					i++
					st.closeObject(t)
					state = sAfter
				} else {
					state = sKey
				}
			case c == '[':
				st.stack = append(st.stack, frame{node: node, arr: true})
				i = jsonscan.SkipWS(b, i+1)
				if i < n && b[i] == ']' {
					i++
					st.stack = st.stack[:len(st.stack)-1]
					state = sAfter
				} else if node >= 0 {
					node = t.Elem(node)
				}
			case c == '"':
				end, esc := jsonscan.ScanString(b, i)
				if end < 0 {
					return false
				}
				if node >= 0 && t.Flags(node) != 0 {
					st.onString(t, node, b, i, end, esc)
				}
				i = end
				state = sAfter
			case c == '-' || (c >= '0' && c <= '9'):
				end := jsonscan.ScanNumber(b, i)
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
				return jsonscan.SkipWS(b, i) == n
			}
			i = jsonscan.SkipWS(b, i)
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
			i = jsonscan.SkipWS(b, i)
			if i >= n || b[i] != '"' {
				return false
			}
			end, esc := jsonscan.ScanString(b, i)
			if end < 0 {
				return false
			}
			node = -1
			if top := st.stack[len(st.stack)-1].node; top >= 0 {
				key := b[i+1 : end-1]
				if esc {
					st.keybuf = jsonscan.AppendUnescaped(st.keybuf[:0], key)
					key = st.keybuf
				}
				node = t.Child(top, key)
			}
			i = jsonscan.SkipWS(b, end)
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
			st.text = jsonscan.AppendUnescaped(st.text, raw)
		} else {
			st.text = append(st.text, raw...)
		}
		st.segs = append(st.segs, segment{rawStart: start, rawEnd: end, textStart: ts, textEnd: len(st.text), system: f&textpath.System != 0})
	}
	if f&textpath.Role != 0 && len(st.stack) > 0 {
		v := raw
		if esc {
			st.keybuf = jsonscan.AppendUnescaped(st.keybuf[:0], raw)
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

func hasLit(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}
