package policy

// The lexicon is one case-folded Aho-Corasick automaton per Set holding
// every literal that some detector anchors on: the keywords of all keyword
// rules, the prompt-injection anchors and the secret prefixes. One pass over
// the text feeds all of them; case-sensitive literals are verified on the
// hit. Sets without keyword rules share a prebuilt lexicon.

type lexKind uint8

const (
	lexSecret lexKind = iota
	lexInjection
	lexKeyword
)

type lexPat struct {
	kind  lexKind
	idx   int32  // secretRules / injAnchors index, or rule order for keywords
	exact string // non-empty: the hit must equal this byte for byte
}

type lexicon struct {
	ac   *acMatcher
	pats []lexPat
}

// kwSource is a keyword rule's contribution to a lexicon.
type kwSource struct {
	order int
	pats  []string
	cs    bool
}

var defaultLexicon = buildLexicon(nil)

func buildLexicon(kws []kwSource) *lexicon {
	lx := &lexicon{}
	var lits []string
	for i, r := range secretRules {
		lits = append(lits, r.prefix)
		lx.pats = append(lx.pats, lexPat{kind: lexSecret, idx: int32(i)})
	}
	for i, a := range injAnchorText {
		lits = append(lits, a)
		lx.pats = append(lx.pats, lexPat{kind: lexInjection, idx: int32(i)})
	}
	for _, k := range kws {
		for _, p := range k.pats {
			lp := lexPat{kind: lexKeyword, idx: int32(k.order)}
			if k.cs {
				lp.exact = p
			}
			lits = append(lits, p)
			lx.pats = append(lx.pats, lp)
		}
	}
	lx.ac = newAC(lits, true)
	return lx
}

// kwHit is a keyword match attributed to a rule.
type kwHit struct {
	start, end int
	rule       int
}

// ensureLex runs the lexicon pass once per evaluation.
func (st *evalState) ensureLex() {
	if st.lexDone {
		return
	}
	st.lexDone = true
	st.ensureText()
	st.injBegin()
	lx := st.lex
	t := st.text
	if len(t) == 0 {
		st.injFinish()
		return
	}
	seg := 0
	lx.ac.scan(t, func(p, s, e int) bool {
		lp := &lx.pats[p]
		switch lp.kind {
		case lexSecret:
			st.onSecretPrefix(&secretRules[lp.idx], s)
		case lexKeyword:
			if lp.exact != "" && string(t[s:e]) != lp.exact {
				return true
			}
			if len(st.kw) < maxKeywordHits {
				st.kw = append(st.kw, kwHit{s, e, int(lp.idx)})
			}
		case lexInjection:
			for seg < len(st.segs) && st.segs[seg].textEnd < e {
				seg++
			}
			if seg < len(st.segs) && s >= st.segs[seg].textStart && !st.segs[seg].system {
				sg := &st.segs[seg]
				st.onInjAnchor(int(lp.idx), t[sg.textStart:sg.textEnd], sg.textStart, s-sg.textStart, e-sg.textStart)
			}
		}
		return true
	})
	st.injFinish()
}
