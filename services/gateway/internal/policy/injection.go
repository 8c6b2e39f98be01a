package policy

import (
	"strings"
)

// Prompt-injection scoring.
//
// Each heuristic is a pattern with a weight in (0,1): either a literal
// (chat-template delimiters such as "<|im_start|>", matched anywhere,
// case-insensitively) or a sequence of word slots, each slot a set of
// alternatives, with a bounded number of arbitrary words allowed before a
// slot ("ignore ~2 previous|prior|all ~2 instructions|rules" matches
// "Ignore all of the previous instructions"). One case-insensitive
// Aho-Corasick pass finds the first words and literals; slots are checked
// only around those anchors, on a few tokens.
//
// The score combines the distinct patterns that matched as a noisy-OR,
// 1 - Π(1 - w), so one strong signal (0.9 for "ignore previous
// instructions") passes the default threshold 0.5 on its own, while weak
// signals ("act as", "no rules", "from now on") need company.
//
// Text authored by the tenant (system prompt, Anthropic/Gemini system
// instructions, Responses "instructions", messages with role system or
// developer) is not scored: system prompts routinely say "never reveal your
// instructions". User, assistant and tool content is (tool results are the
// indirect-injection channel).

type injSlot struct {
	gap   int // arbitrary tokens allowed before this slot
	words []string
}

type injPattern struct {
	cat    kind
	weight float64
	lit    string    // literal pattern, or
	slots  []injSlot // word sequence (slots[0] is the anchor)
}

// Pattern grammar: space-separated slots; a slot is words joined by '|';
// "~N" before a slot allows N arbitrary words before it.
var injDefs = []struct {
	cat kind
	w   float64
	p   string
}{
	// instruction override
	{kInstructionOverride, 0.9, "ignore|ignoring|disregard|disregarding|forget|override|bypass|skip|neglect|abandon|drop ~3 previous|prior|above|earlier|preceding|initial|original|old|system|developer|all|any|your|these|those|former|existing|safety ~2 instructions|instruction|directions|directives|rules|guidelines|commands|constraints|guardrails|restrictions|programming|policies|policy|prompt|prompts|orders"},
	{kInstructionOverride, 0.4, "ignore|ignoring|disregard|disregarding|forget ~2 previous|prior|above|earlier|preceding|all|any|your ~2 messages|message|text|context|conversation|content|input"},
	{kInstructionOverride, 0.75, "forget|disregard|ignore|ignoring everything|anything|all ~3 above|before|previously|earlier|told|said"},
	{kInstructionOverride, 0.6, "do|must|should|will|shall not ~1 follow|obey|adhere|comply ~3 instructions|rules|guidelines|directions|programming|policies"},
	{kInstructionOverride, 0.6, "don't|dont|never ~1 follow|obey|adhere|comply ~3 instructions|rules|guidelines|directions|programming|policies"},
	{kInstructionOverride, 0.35, "new|updated|revised|real|actual ~1 instructions|instruction|directive|directives|orders|objective"},
	// role-play / jailbreak
	{kRolePlay, 0.85, "do anything now"},
	{kRolePlay, 0.8, "dan ~1 mode|jailbreak|prompt"},
	{kRolePlay, 0.8, "god|jailbreak|jailbroken|unrestricted|unfiltered|evil|uncensored|unlocked|chaos|opposite mode"},
	{kRolePlay, 0.45, "developer|debug|sudo|admin|maintenance mode"},
	{kRolePlay, 0.7, "act|acting|pretend|pretending|roleplay|behave|respond|answer|simulate|become|play ~4 unrestricted|unfiltered|uncensored|jailbroken|evil|amoral|unethical|rogue|immoral|unaligned|unbound|lawless"},
	{kRolePlay, 0.4, "no|without|zero|free ~2 restrictions|limitations|filters|filtering|censorship|boundaries|constraints|morals|ethics|guidelines|limits|rules|guardrails|safeguards"},
	{kRolePlay, 0.45, "bypass|circumvent|disable|deactivate|evade|remove ~3 safety|content|filters|filter|guardrails|moderation|censorship|alignment|safeguards|ethics"},
	{kRolePlay, 0.25, "you are now"},
	{kRolePlay, 0.25, "you're now"},
	{kRolePlay, 0.45, "stay|remain|staying in character"},
	{kRolePlay, 0.2, "from now on"},
	{kRolePlay, 0.15, "pretend|roleplay|impersonate"},
	{kRolePlay, 0.45, "jailbreak|jailbroken|jailbreaking"},
	// system prompt exfiltration
	{kExfiltration, 0.8, "reveal|show|print|repeat|output|display|tell|leak|dump|recite|disclose|expose|echo|share ~2 your|the|its|this|that ~1 system|initial|original|hidden|secret|internal|developer|first|preprompt|full|entire ~1 prompt|prompts|instructions|instruction|message|rules|directives|guidelines|configuration"},
	{kExfiltration, 0.6, "repeat|print|output|recite|echo|reproduce|copy|return ~3 words|text|everything|content|instructions|lines|tokens|messages ~1 above|before|verbatim|preceding|prior"},
	{kExfiltration, 0.7, "what are|were|is your ~1 initial|original|system|hidden|secret|exact|first|full ~1 instructions|prompt|rules|directives|guidelines|message"},
	{kExfiltration, 0.5, "how|what ~2 were you told|instructed|programmed|configured|prompted"},
	{kExfiltration, 0.45, "your system prompt|message|instructions"},
	// delimiter injection: fake chat-template / role markers
	{kDelimiter, 0.6, "end of ~1 system prompt|instructions|message"},
}

var injLiterals = []struct {
	lit string
	w   float64
}{
	{"<|im_start|>", 0.45}, {"<|im_start|>system", 0.75}, {"<|im_end|>", 0.45}, {"<|system|>", 0.6},
	{"<|user|>", 0.4}, {"<|assistant|>", 0.4}, {"<|endoftext|>", 0.45}, {"<|eot_id|>", 0.5},
	{"<|start_header_id|>", 0.5}, {"<|start_header_id|>system", 0.75}, {"[inst]", 0.4}, {"[/inst]", 0.45},
	{"<<sys>>", 0.6}, {"<</sys>>", 0.5}, {"### system:", 0.45}, {"### instruction:", 0.4},
	{"### instructions:", 0.4}, {"</system>", 0.45}, {"<system>", 0.4}, {"\n\nhuman:", 0.45},
	{"\n\nassistant:", 0.4}, {"</user>", 0.3}, {"</instructions>", 0.4},
}

type injAnchor struct {
	word     bool  // needs word boundaries
	patterns []int // injPatterns starting here
}

var injPatterns, injAnchors, injAnchorText, maxInjToks = buildInjection()

func buildInjection() (injPatterns []injPattern, injAnchors []injAnchor, injAnchorText []string, maxInjToks int) {
	anchorIdx := map[string]int{}
	addAnchor := func(text string, word bool, pat int) {
		key := text
		if word {
			key = "w:" + text
		}
		i, ok := anchorIdx[key]
		if !ok {
			i = len(injAnchors)
			anchorIdx[key] = i
			injAnchors = append(injAnchors, injAnchor{word: word})
			injAnchorText = append(injAnchorText, text)
		}
		injAnchors[i].patterns = append(injAnchors[i].patterns, pat)
	}
	for _, d := range injDefs {
		p := injPattern{cat: d.cat, weight: d.w}
		gap := 0
		toks := 0
		for _, f := range strings.Fields(d.p) {
			if f[0] == '~' {
				gap = int(f[1] - '0')
				continue
			}
			p.slots = append(p.slots, injSlot{gap: gap, words: strings.Split(f, "|")})
			toks += gap + 1
			gap = 0
		}
		maxInjToks = max(maxInjToks, toks)
		injPatterns = append(injPatterns, p)
		for _, w := range p.slots[0].words {
			addAnchor(w, true, len(injPatterns)-1)
		}
	}
	for _, l := range injLiterals {
		injPatterns = append(injPatterns, injPattern{cat: kDelimiter, weight: l.w, lit: l.lit})
		addAnchor(l.lit, false, len(injPatterns)-1)
	}
	return
}

type tok struct{ start, end int }

func isTokByte(c byte) bool { return isAlnum(c) || c == '\'' }

// scoreInjection scores the non-system text (once per evaluation, during
// the lexicon pass).
func (st *evalState) scoreInjection() { st.ensureLex() }

func (st *evalState) injBegin() {
	if cap(st.injMatched) < len(injPatterns) {
		st.injMatched = make([]bool, len(injPatterns))
	}
	st.injMatched = st.injMatched[:len(injPatterns)]
	clear(st.injMatched)
}

// onInjAnchor handles an anchor hit at seg[s:e] (seg starts at text offset base).
func (st *evalState) onInjAnchor(a int, seg []byte, base, s, e int) {
	an := &injAnchors[a]
	if an.word && ((s > 0 && isTokByte(seg[s-1])) || (e < len(seg) && isTokByte(seg[e]))) {
		return
	}
	var toks []tok
	if an.word {
		toks = st.tokensAfter(seg, e)
	}
	for _, pi := range an.patterns {
		p := &injPatterns[pi]
		end := e
		if p.lit == "" {
			last, ok := matchSlots(seg, p.slots, 1, toks, 0)
			if !ok {
				continue
			}
			if last >= 0 {
				end = toks[last].end
			}
		}
		if len(st.injHits) < 256 {
			st.injHits = append(st.injHits, hit{base + s, base + end, p.cat})
		}
		st.injMatched[pi] = true
	}
}

func (st *evalState) injFinish() {
	miss := 1.0
	for pi, m := range st.injMatched {
		if m {
			miss *= 1 - injPatterns[pi].weight
		}
	}
	st.injScore = 1 - miss
}

// tokensAfter returns up to maxInjToks words following position e.
func (st *evalState) tokensAfter(seg []byte, e int) []tok {
	toks := st.toks[:0]
	i := e
	for len(toks) < maxInjToks && i < len(seg) {
		for i < len(seg) && !isTokByte(seg[i]) {
			i++
		}
		if i >= len(seg) {
			break
		}
		s := i
		for i < len(seg) && isTokByte(seg[i]) {
			i++
		}
		toks = append(toks, tok{s, i})
	}
	st.toks = toks
	return toks
}

// matchSlots matches slots[k:] against toks[from:], honouring gaps, with
// backtracking. It returns the index of the last matched token (-1 when
// there was nothing left to match).
func matchSlots(seg []byte, slots []injSlot, k int, toks []tok, from int) (int, bool) {
	if k == len(slots) {
		return from - 1, true
	}
	sl := &slots[k]
	for j := from; j <= from+sl.gap && j < len(toks); j++ {
		if slotHas(sl, seg[toks[j].start:toks[j].end]) {
			if last, ok := matchSlots(seg, slots, k+1, toks, j+1); ok {
				return last, true
			}
		}
	}
	return 0, false
}

func slotHas(sl *injSlot, w []byte) bool {
	for _, x := range sl.words {
		if len(x) == len(w) && equalFoldASCII(w, x) {
			return true
		}
	}
	return false
}

func equalFoldASCII(b []byte, lower string) bool {
	for i := range b {
		if lowerASCII(b[i]) != lower[i] {
			return false
		}
	}
	return true
}
