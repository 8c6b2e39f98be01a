package proxy

import (
	"bytes"
	"net/http"
	"unicode/utf8"

	"trueportai/services/gateway/internal/policy"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/textpath"
	"trueportai/services/gateway/internal/usage"
)

// Response rules on streams (docs/decisions.md, "Response rules on
// streams"). The guard reads each event's text deltas (provider.StreamText)
// into one text per channel (choice, candidate, content block), holds back
// the last policy.StreamHold bytes of each, and rewrites every event to
// carry the text it releases instead of its own delta: text that can no
// longer be part of a match, redacted where a redact rule matched. A block
// match ends the stream with the provider's error event. Events that end a
// text release all of it first (in events cloned from the channel's last
// text event). Flag and shadow rules, and the violations of the whole
// stream, are evaluated once on the whole text at the end.

const (
	// guardTextLimit bounds the text kept for the final evaluation.
	guardTextLimit = 1 << 20
	// guardOpenLimit bounds how far back a growing redaction (a PEM block
	// still arriving) keeps its start for the detector to see.
	guardOpenLimit = 64 << 10
)

// streamGuard is the per-stream state; it is used by one goroutine.
type streamGuard struct {
	st  provider.StreamText
	set *policy.Set
	in  policy.Input // scope facts; Body varies
	t   *provider.Target
	// enforce: block/redact rules apply, events are held back and
	// rewritten; otherwise the guard only collects the text (flags).
	enforce bool
	hold    int
	batch   int // release only when this much more than hold is pending

	ev     provider.StreamEvent
	tmplEv provider.StreamEvent
	chans  []*guardChannel
	spans  []policy.StreamSpan
	texts  [][]byte
	doc    []byte
	out    []byte // what to send for the current upstream event
	textN  int    // bytes kept in the channels' whole texts

	blocked  bool
	redacted bool
	failed   bool         // an event could not be re-encoded
	blockIn  policy.Input // what blocked (valid until the next event)
	recorded bool
}

// guardChannel is one text of the stream.
type guardChannel struct {
	id   int
	buf  []byte // text from absolute offset base: context, then held text
	base int
	rel  int // absolute offset up to which text was released
	// inRed: the release ended inside a redaction that started at redStart,
	// so that if the match grows it continues without a second label.
	inRed    bool
	redStart int
	released []byte // text released for the current event
	all      []byte // the whole text, for the final evaluation

	tmplRaw, tmplName, tmplData []byte // the channel's last text event
}

// newStreamGuard returns the guard of a stream; nil with applies=true when
// the provider's streams cannot be read (response rules then only flag, on
// raw events), applies=false when no response rule is in scope.
func newStreamGuard(c *call) (g *streamGuard, applies bool) {
	in := policy.Input{Provider: c.prov, Env: c.key.Env, Model: c.model, KeyID: c.key.ID, Direction: policy.DirectionResponse}
	if !c.rules.RespondsTo(in) {
		return nil, false
	}
	st, ok := c.prov.(provider.StreamText)
	if !ok {
		return nil, true
	}
	g = &streamGuard{st: st, set: c.rules, t: &c.target, in: in}
	g.hold, g.enforce = c.rules.StreamHold(g.in)
	g.batch = min(max(g.hold/8, 32), 512)
	return g, true
}

func (g *streamGuard) channel(id int) *guardChannel {
	for _, ch := range g.chans {
		if ch.id == id {
			return ch
		}
	}
	ch := &guardChannel{id: id}
	g.chans = append(g.chans, ch)
	return ch
}

// event processes one upstream event; out is what to send in its place
// (possibly several events, possibly nothing) and stop ends the stream (a
// block; out then ends with the error event).
func (g *streamGuard) event(raw, name, data []byte, forward bool) (out []byte, stop bool) {
	g.out = g.out[:0]
	g.st.ParseStreamEvent(name, data, &g.ev)
	ev := &g.ev
	if ev.Kind == provider.EventText {
		for _, d := range ev.Deltas {
			g.channel(d.Channel).take(g, d.Text)
		}
	}
	if !g.enforce {
		if forward {
			g.out = append(g.out, raw...)
		}
		return g.out, false
	}
	switch ev.Kind {
	case provider.EventNeutral:
		if forward {
			g.out = append(g.out, raw...)
		}
		return g.out, false
	case provider.EventText:
		return g.textEvent(raw, name, data, ev.End)
	}
	// Whole and other events end the texts: release them first.
	if g.releaseAll(nil) {
		return g.out, true
	}
	if ev.Kind == provider.EventWhole {
		return g.wholeEvent(raw, name, data, forward)
	}
	if ev.Doc == nil && len(data) > 0 && g.scanBlocks(data) {
		// Not understood (not JSON): it may carry text; it can only pass
		// when nothing in it matches.
		return g.out, true
	}
	if forward {
		g.out = append(g.out, raw...)
	}
	return g.out, false
}

// take appends a delta to the channel's text.
func (ch *guardChannel) take(g *streamGuard, text []byte) {
	if g.enforce {
		ch.buf = append(ch.buf, text...)
	}
	if room := guardTextLimit - g.textN; room > 0 {
		n := min(len(text), room)
		ch.all = append(ch.all, text[:n]...)
		g.textN += n
	}
}

// textEvent sends a text event carrying what its channels release (all of
// it when the event ends them).
func (g *streamGuard) textEvent(raw, name, data []byte, end bool) ([]byte, bool) {
	ev := &g.ev
	for _, ch := range g.chans {
		ch.released = ch.released[:0]
	}
	if end {
		// Channels without a delta here release into their own events,
		// sent before this one.
		if g.releaseAll(ev.Deltas) {
			return g.out, true
		}
	}
	for i, d := range ev.Deltas {
		if i > 0 && ev.Deltas[i-1].Channel == d.Channel {
			continue
		}
		if g.release(g.channel(d.Channel), end) {
			return g.out, true
		}
	}
	ok := g.emit(raw, name, data, ev)
	if !end {
		for _, d := range ev.Deltas {
			ch := g.channel(d.Channel)
			ch.tmplRaw = append(ch.tmplRaw[:0], raw...)
			ch.tmplName = append(ch.tmplName[:0], name...)
			ch.tmplData = append(ch.tmplData[:0], data...)
		}
	}
	return g.out, !ok
}

// emit appends the event with each channel's released text in the last of
// its deltas (the others empty); the raw event when nothing changed.
func (g *streamGuard) emit(raw, name, data []byte, ev *provider.StreamEvent) bool {
	g.texts = g.texts[:0]
	same := true
	for i, d := range ev.Deltas {
		var t []byte
		if i == len(ev.Deltas)-1 || !sameChannelAfter(ev.Deltas, i) {
			t = g.channel(d.Channel).released
		}
		g.texts = append(g.texts, t)
		same = same && bytes.Equal(t, d.Text)
	}
	if same {
		g.out = append(g.out, raw...)
		return true
	}
	g.doc = provider.SpliceStrings(g.doc[:0], ev.Doc, ev.Deltas, g.texts)
	n := len(g.out)
	out, ok := g.st.WrapStreamEvent(g.out, raw, name, data, g.doc)
	if !ok {
		g.out = g.out[:n]
		g.stop(policy.Input{}, true)
		return false
	}
	g.out = out
	return true
}

// sameChannelAfter reports whether a later delta has deltas[i]'s channel.
func sameChannelAfter(deltas []provider.Delta, i int) bool {
	for _, d := range deltas[i+1:] {
		if d.Channel == deltas[i].Channel {
			return true
		}
	}
	return false
}

// releaseAll releases every channel's held text (the texts end), each into
// an event cloned from the channel's last text event, except channels that
// have a delta in skip (the current event carries theirs). It reports a
// block.
func (g *streamGuard) releaseAll(skip []provider.Delta) bool {
	for _, ch := range g.chans {
		if hasChannel(skip, ch.id) || ch.base+len(ch.buf) == ch.rel {
			continue
		}
		ch.released = ch.released[:0]
		if g.release(ch, true) {
			return true
		}
		if len(ch.released) == 0 || ch.tmplRaw == nil {
			continue
		}
		te := &g.tmplEv
		g.st.ParseStreamEvent(ch.tmplName, ch.tmplData, te)
		// Only this channel's text goes out in the clone.
		g.texts = g.texts[:0]
		for i, d := range te.Deltas {
			var t []byte
			if d.Channel == ch.id && !sameChannelAfter(te.Deltas, i) {
				t = ch.released
			}
			g.texts = append(g.texts, t)
		}
		g.doc = provider.SpliceStrings(g.doc[:0], te.Doc, te.Deltas, g.texts)
		out, ok := g.st.WrapStreamEvent(g.out, ch.tmplRaw, ch.tmplName, ch.tmplData, g.doc)
		if !ok {
			g.stop(policy.Input{}, true)
			return true
		}
		g.out = out
	}
	return false
}

func hasChannel(ds []provider.Delta, id int) bool {
	for _, d := range ds {
		if d.Channel == id {
			return true
		}
	}
	return false
}

// release moves the channel's text that can no longer be part of a match
// (all of it when final) to ch.released, redacted, and drops context it
// no longer needs. It reports a block (the error event is then in g.out).
func (g *streamGuard) release(ch *guardChannel, final bool) bool {
	end := ch.base + len(ch.buf)
	cut := end
	if !final {
		if end-ch.rel < g.hold+g.batch {
			return false
		}
		cut = end - g.hold
		// Never split a character.
		for i := 0; i < utf8.UTFMax && cut > ch.rel && !utf8.RuneStart(ch.buf[cut-ch.base]); i++ {
			cut--
		}
	}
	if cut <= ch.rel {
		return false
	}
	in := g.in
	in.Body = ch.buf
	g.spans = g.set.ScanText(in, g.spans[:0])
	// Every match that starts before cut is final: a longer text cannot
	// change it (it ends at most hold-right context bytes later).
	for i := range g.spans {
		sp := &g.spans[i]
		if sp.Block && ch.base+sp.Start < cut {
			g.stop(in, false)
			return true
		}
	}
	// A redaction that straddles cut is released whole.
	for _, sp := range g.spans {
		if !sp.Block && ch.base+sp.Start < cut && ch.base+sp.End > cut {
			cut = ch.base + sp.End
		}
	}
	pos := ch.rel
	inRed := false
	for _, sp := range g.spans {
		s, e := ch.base+sp.Start, ch.base+sp.End
		if sp.Block || e <= ch.rel || s >= cut {
			continue
		}
		if from := max(s, ch.rel); from > pos {
			ch.released = append(ch.released, ch.buf[pos-ch.base:from-ch.base]...)
		}
		// A match that began in released text continues one whose label
		// was sent, unless the last release ended outside a redaction.
		if s >= ch.rel || !ch.inRed {
			ch.released = append(ch.released, sp.Label...)
			g.redacted = true
		}
		pos = max(pos, min(e, cut))
		inRed = e >= cut
		if inRed {
			ch.redStart = s
		}
	}
	if pos < cut {
		ch.released = append(ch.released, ch.buf[pos-ch.base:cut-ch.base]...)
		inRed = false
	}
	ch.rel, ch.inRed = cut, inRed
	// Keep left context, and the start of a redaction that may grow.
	keep := ch.rel - policy.StreamLeftContext
	if ch.inRed {
		keep = max(min(keep, ch.redStart), ch.rel-guardOpenLimit)
	}
	if drop := keep - ch.base; drop > 0 {
		ch.buf = append(ch.buf[:0], ch.buf[drop:]...)
		ch.base = keep
	}
	return false
}

// scanBlocks reports whether a text not understood matches any block or
// redact rule (then the stream ends: it cannot be rewritten).
func (g *streamGuard) scanBlocks(text []byte) bool {
	in := g.in
	in.Body = text
	g.spans = g.set.ScanText(in, g.spans[:0])
	if len(g.spans) == 0 {
		return false
	}
	g.stop(in, false)
	return true
}

// wholeFormat evaluates an event that repeats whole texts.
type wholeFormat struct {
	name  string
	paths *textpath.Trie
}

func (f wholeFormat) Name() string                  { return f.name }
func (f wholeFormat) TextPaths(bool) *textpath.Trie { return f.paths }

// wholeEvent evaluates an event repeating whole texts like a complete
// response: a block ends the stream, redactions rewrite it.
func (g *streamGuard) wholeEvent(raw, name, data []byte, forward bool) ([]byte, bool) {
	ev := &g.ev
	in := g.in
	in.Provider = wholeFormat{name: g.in.Provider.Name(), paths: ev.Paths}
	in.Body = ev.Doc
	res := g.set.Evaluate(in)
	if res.Blocked {
		g.stop(in, false)
		return g.out, true
	}
	if !forward {
		return g.out, false
	}
	if !res.Redacted {
		g.out = append(g.out, raw...)
		return g.out, false
	}
	g.redacted = true
	out, ok := g.st.WrapStreamEvent(g.out, raw, name, data, res.Body)
	if !ok {
		g.stop(policy.Input{}, true)
		return g.out, true
	}
	g.out = out
	return g.out, false
}

// finish releases what is still held at the end of the stream.
func (g *streamGuard) finish() (out []byte, stop bool) {
	g.out = g.out[:0]
	if !g.enforce || g.blocked {
		return nil, false
	}
	stop = g.releaseAll(nil)
	return g.out, stop
}

// stop ends the stream: in is what blocked; failed means an event could
// not be re-encoded (the stream ends as an error, not a block).
func (g *streamGuard) stop(in policy.Input, failed bool) {
	g.blocked, g.failed, g.blockIn = true, failed, in
}

// text is the whole text of the stream for the final evaluation: the
// channels' texts joined by "\n".
func (g *streamGuard) text() []byte {
	var b []byte
	for i, ch := range g.chans {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, ch.all...)
	}
	return b
}

// record evaluates every response rule on the whole text and records the
// violations like the non-stream path does: the guard's outcome (blocked,
// redacted) stands; block and redact matches the guard did not enforce
// (matches longer than the window) are recorded as flags. It runs once,
// when the stream blocks or ends, and returns the violation that blocked
// (nil if none).
func (g *streamGuard) record(c *call) *usage.Violation {
	if g.recorded {
		return nil
	}
	g.recorded = true
	text := g.text()
	blocked := g.blocked && !g.failed
	if len(text) == 0 && !blocked {
		return nil
	}
	in := g.in
	in.Body, in.Raw = text, true
	res := g.set.Evaluate(in)
	if blocked && res.Blocking() == nil && g.blockIn.Body != nil {
		// What blocked is not in the deltas' text (a whole-text event, an
		// event not understood): its violations are the block's.
		more := g.set.Evaluate(g.blockIn)
		for _, v := range more.Violations {
			if !v.Shadow && v.Action != policy.ActionFlag {
				res.Violations = append(res.Violations, v)
			}
		}
	}
	for i := range res.Violations {
		v := &res.Violations[i]
		if v.Shadow {
			continue
		}
		if (v.Action == policy.ActionBlock && !blocked) || (v.Action == policy.ActionRedact && !g.redacted && !blocked) {
			v.Action = policy.ActionFlag
		}
	}
	res.Blocked, res.Redacted = blocked, g.redacted
	first := len(c.violations)
	c.applyPolicy(res)
	if blocked {
		c.outcome = usage.OutcomeBlocked
		for i := first; i < len(c.violations); i++ {
			if v := &c.violations[i]; !v.Shadow && v.Action == policy.ActionBlock {
				return v
			}
		}
		for i := first; i < len(c.violations); i++ {
			if v := &c.violations[i]; !v.Shadow && v.Action == policy.ActionRedact {
				return v
			}
		}
	}
	return nil
}

// stopEvent appends the error event that ends a blocked stream.
func (g *streamGuard) stopEvent(dst []byte, v *usage.Violation) []byte {
	if g.failed {
		return g.st.StreamErrorEvent(dst, g.t, http.StatusBadGateway, "stream_rewrite_failed", "the response stream could not be relayed")
	}
	msg := "response blocked by policy"
	if v != nil {
		msg = "response blocked by policy \"" + v.PolicyName + "\" (" + v.Type + "); violation id " + v.ID
	}
	return g.st.StreamErrorEvent(dst, g.t, http.StatusBadRequest, "policy_violation", msg)
}
