package policy

import (
	"unicode"
	"unicode/utf8"
)

// maxKeywordHits bounds the hits one keyword rule records per evaluation.
const maxKeywordHits = 1 << 16

// collectKeywords runs the rule's automaton once over the text. With
// whole_word, a match must not continue a word on either side: the
// characters around it and its own first/last characters may not both be
// word characters (letters of any script, digits, '_'), so "c++" or
// "$ACME" still match at their non-word edges.
func (st *evalState) collectKeywords(cr *compiledRule) {
	st.ensureLex()
	t := st.text
	for _, h := range st.kw {
		if h.rule != cr.order {
			continue
		}
		if cr.kwWhole && !(wordEdge(t, h.start) && wordEdge(t, h.end)) {
			continue
		}
		st.hits = append(st.hits, hit{h.start, h.end, kKeyword})
	}
}

// wordEdge reports whether position i of t is not inside a word.
func wordEdge(t []byte, i int) bool {
	if i == 0 || i == len(t) {
		return true
	}
	before, _ := utf8.DecodeLastRune(t[:i])
	after, _ := utf8.DecodeRune(t[i:])
	return !(isWordRune(before) && isWordRune(after))
}

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		c := byte(r)
		return isAlnum(c) || c == '_'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}
