package policy

import (
	"slices"
	"unicode/utf8"

	"trueportai/services/gateway/internal/jsonscan"
	"trueportai/services/gateway/internal/textpath"
)

// evalState is the per-Evaluate scratch space (pooled). Detector results
// are memoised so that several rules using the same kinds scan once.
type evalState struct {
	in  Input
	dir direction

	parsed bool
	raw    bool // body is not valid JSON: the whole body is the text
	text   []byte
	segs   []segment
	stack  []frame
	keybuf []byte

	bodyModelAt  int // raw span of the top-level "model" string; 0 = none
	bodyModelEnd int
	bodyModelEsc bool
	modelDone    bool
	model        string
	maxOut       float64
	maxOutSet    bool
	maxOutField  string
	chars        int64 // prompt characters, -1 until computed

	runs     []run
	runsDone bool
	piiDone  uint32
	pii      [kIPv4 + 1][]hit

	lex     *lexicon
	lexDone bool
	sec     []hit
	secEnd  int
	kw      []kwHit

	injScore   float64
	injHits    []hit
	injMatched []bool
	toks       []tok

	hits  []hit
	spans []span
}

// span is a range of the text to redact.
type span struct {
	start, end int
	label      string
	order      int // rule order: lower wins the label when spans overlap
}

func (st *evalState) reset(in *Input, dir direction, lx *lexicon) {
	st.in = *in
	st.lex = lx
	st.dir = dir
	st.parsed, st.raw = false, false
	st.text = st.text[:0]
	st.segs = st.segs[:0]
	st.stack = st.stack[:0]
	st.bodyModelAt, st.modelDone, st.model = 0, false, ""
	st.maxOut, st.maxOutSet, st.maxOutField = 0, false, ""
	st.chars = -1
	st.runs, st.runsDone = st.runs[:0], false
	st.piiDone = 0
	for i := range st.pii {
		st.pii[i] = st.pii[i][:0]
	}
	st.lexDone, st.sec, st.secEnd, st.kw = false, st.sec[:0], 0, st.kw[:0]
	st.injScore, st.injHits = 0, st.injHits[:0]
	st.hits = st.hits[:0]
	st.spans = st.spans[:0]
}

// release drops references to the caller's data and oversized buffers.
func (st *evalState) release() {
	st.in = Input{}
	st.lex = nil
	st.model = ""
	const keep = 1 << 20
	if cap(st.text) > keep {
		st.text = nil
	}
	if cap(st.segs) > 4096 {
		st.segs = nil
	}
	if cap(st.stack) > 4096 {
		st.stack = nil
	}
	if cap(st.runs) > 4096 {
		st.runs = nil
	}
}

// ensureText extracts the text once. A body that is not valid JSON is
// scanned whole as one raw segment (and redacted in place).
func (st *evalState) ensureText() {
	if st.parsed {
		return
	}
	st.parsed = true
	b := st.in.Body
	if len(b) == 0 {
		return
	}
	if !st.in.Raw && st.parseJSON(b, textPaths(st.in.Provider, st.dir)) {
		return
	}
	st.raw = true
	st.text = append(st.text[:0], b...)
	st.segs = append(st.segs[:0], segment{rawStart: 0, rawEnd: len(b), textStart: 0, textEnd: len(b)})
	st.stack = st.stack[:0]
	st.bodyModelAt = 0
	st.maxOut, st.maxOutSet, st.maxOutField = 0, false, ""
}

// modelName is the normalised requested model: Input.Model, else the
// body's top-level "model".
func (st *evalState) modelName() string {
	if st.modelDone {
		return st.model
	}
	st.modelDone = true
	if st.in.Model != "" {
		st.model = normModel(st.in.Model)
	} else {
		st.ensureText()
		if st.bodyModelAt > 0 {
			raw := st.in.Body[st.bodyModelAt:st.bodyModelEnd]
			if st.bodyModelEsc {
				raw = jsonscan.AppendUnescaped(nil, raw)
			}
			st.model = normModel(string(raw))
		}
	}
	return st.model
}

// promptChars counts the characters (runes) of the extracted text,
// separators excluded.
func (st *evalState) promptChars() int64 {
	if st.chars < 0 {
		var n int
		for _, sg := range st.segs {
			n += utf8.RuneCount(st.text[sg.textStart:sg.textEnd])
		}
		st.chars = int64(n)
	}
	return st.chars
}

// buildMatches turns st.hits (sorted) into masked matches, dropping hits
// contained in a previous one and capping the count.
func (st *evalState) buildMatches(typ ruleType) []Match {
	var out []Match
	lastStart, lastEnd := -1, -1
	for _, h := range st.hits {
		if h.start >= lastStart && h.end <= lastEnd {
			continue
		}
		lastStart, lastEnd = h.start, h.end
		if len(out) == MaxMatchesPerViolation {
			break
		}
		if out == nil {
			out = make([]Match, 0, min(len(st.hits), MaxMatchesPerViolation))
		}
		out = append(out, Match{Kind: kindName[h.kind], Snippet: snippet(typ, h.kind, st.text[h.start:h.end]), Offset: h.start})
	}
	return out
}

// mergeSpans sorts spans and merges overlapping ones; the merged span keeps
// the label of the highest-priority rule involved.
func mergeSpans(sp []span) []span {
	slices.SortFunc(sp, func(a, b span) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.end - a.end
	})
	out := sp[:0]
	for _, s := range sp {
		if n := len(out); n > 0 && s.start < out[n-1].end {
			last := &out[n-1]
			last.end = max(last.end, s.end)
			if s.order < last.order {
				last.label, last.order = s.label, s.order
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// rewrite returns a new body with every span replaced by its label inside
// the string values it came from.
func (st *evalState) rewrite() []byte {
	spans := mergeSpans(st.spans)
	body := st.in.Body
	out := make([]byte, 0, len(body)+len(spans)*24)
	last := 0
	si := 0
	for _, sg := range st.segs {
		for si < len(spans) && spans[si].end <= sg.textStart {
			si++
		}
		if si == len(spans) {
			break
		}
		if spans[si].start >= sg.textEnd {
			continue
		}
		out = append(out, body[last:sg.rawStart]...)
		if !st.raw {
			out = append(out, '"')
		}
		pos := sg.textStart
		for j := si; j < len(spans) && spans[j].start < sg.textEnd; j++ {
			s, e := max(spans[j].start, sg.textStart), min(spans[j].end, sg.textEnd)
			if e <= s {
				continue
			}
			out = st.appendText(out, st.text[pos:s])
			out = append(out, spans[j].label...)
			pos = e
		}
		out = st.appendText(out, st.text[pos:sg.textEnd])
		if !st.raw {
			out = append(out, '"')
		}
		last = sg.rawEnd
	}
	return append(out, body[last:]...)
}

func (st *evalState) appendText(dst, s []byte) []byte {
	if st.raw {
		return append(dst, s...)
	}
	return jsonscan.AppendEscaped(dst, s)
}

// anyText makes every string value of a JSON body text: the paths for a
// body whose wire format is unknown (nothing escapes a scan, and redaction
// still re-encodes strings in place, keeping the JSON valid).
var anyText = textpath.Compile([]textpath.Spec{{Path: "", Flags: textpath.Text | textpath.Deep}})

// textPaths picks the provider's paths for the direction.
func textPaths(f Format, d direction) *textpath.Trie {
	if f == nil {
		return anyText
	}
	return f.TextPaths(d == dirResponse)
}
