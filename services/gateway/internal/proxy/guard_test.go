package proxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"trueportai/services/gateway/internal/keys"
	"trueportai/services/gateway/internal/platform"
	"trueportai/services/gateway/internal/policy"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/provider/anthropic"
	"trueportai/services/gateway/internal/provider/bedrock"
	"trueportai/services/gateway/internal/provider/google"
	"trueportai/services/gateway/internal/provider/openai"
	"trueportai/services/gateway/internal/sse"
	"trueportai/services/gateway/internal/usage"
)

// rawQuote quotes s as a JSON string leaving bytes >= 0x80 as they are, so
// that a character can be split across two events' strings.
func rawQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// streamShape builds one provider's stream of text pieces and reads the
// text (and whether an error event came) back the way its SDKs do.
type streamShape struct {
	name        string
	prov        provider.Provider
	target      provider.Target
	contentType string
	build       func(pieces []string) []byte
	read        func(t testing.TB, b []byte) (text string, errored bool)
}

func sseEvents(t testing.TB, b []byte) [][2]string {
	t.Helper()
	fr := sse.Framing{}.Framer(bytes.NewReader(b))
	defer fr.Release()
	var out [][2]string
	for {
		_, name, data, err := fr.Next()
		if len(data) > 0 || len(name) > 0 {
			out = append(out, [2]string{string(name), string(data)})
		}
		if err != nil {
			return out
		}
	}
}

func decodeJSON(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("client got an event that is not JSON: %q: %v", s, err)
	}
	return m
}

func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func str(v any) string { s, _ := v.(string); return s }

var sseShapes = []streamShape{
	{
		name: "openai chat", prov: openai.New("http://x"), target: provider.Target{Rest: "chat/completions"}, contentType: "text/event-stream",
		build: func(pieces []string) []byte {
			var b strings.Builder
			b.WriteString(`data: {"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n")
			for _, p := range pieces {
				b.WriteString(`data: {"id":"c","choices":[{"index":0,"delta":{"content":` + rawQuote(p) + `},"finish_reason":null}]}` + "\n\n")
			}
			b.WriteString(`data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n")
			b.WriteString(`data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}` + "\n\n")
			b.WriteString("data: [DONE]\n\n")
			return []byte(b.String())
		},
		read: func(t testing.TB, b []byte) (string, bool) {
			var text strings.Builder
			for _, e := range sseEvents(t, b) {
				if e[1] == "[DONE]" {
					continue
				}
				m := decodeJSON(t, e[1])
				if m["error"] != nil {
					return text.String(), true
				}
				text.WriteString(str(dig(m, "choices", 0, "delta", "content")))
			}
			return text.String(), false
		},
	},
	{
		name: "openai responses", prov: openai.New("http://x"), target: provider.Target{Rest: "responses"}, contentType: "text/event-stream",
		build: func(pieces []string) []byte {
			var b strings.Builder
			full := rawQuote(strings.Join(pieces, ""))
			b.WriteString("event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"output\":[]}}\n\n")
			for _, p := range pieces {
				b.WriteString("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"output_index\":0,\"content_index\":0,\"delta\":" + rawQuote(p) + "}\n\n")
			}
			b.WriteString("event: response.output_text.done\ndata: {\"type\":\"response.output_text.done\",\"output_index\":0,\"content_index\":0,\"text\":" + full + "}\n\n")
			b.WriteString("event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":" + full + "}]}],\"usage\":{\"input_tokens\":3,\"output_tokens\":5,\"total_tokens\":8}}}\n\n")
			return []byte(b.String())
		},
		read: func(t testing.TB, b []byte) (string, bool) {
			var text strings.Builder
			var done []string
			for _, e := range sseEvents(t, b) {
				m := decodeJSON(t, e[1])
				switch str(m["type"]) {
				case "error":
					return text.String(), true
				case "response.output_text.delta":
					text.WriteString(str(m["delta"]))
				case "response.output_text.done":
					done = append(done, str(m["text"]))
				case "response.completed":
					done = append(done, str(dig(m, "response", "output", 0, "content", 0, "text")))
				}
			}
			// The texts repeated whole must say what the deltas said.
			for _, d := range done {
				if d != text.String() {
					t.Errorf("whole text %q differs from the deltas' %q", d, text.String())
				}
			}
			return text.String(), false
		},
	},
	{
		name: "anthropic", prov: anthropic.New("http://x"), target: provider.Target{Rest: "messages"}, contentType: "text/event-stream",
		build: func(pieces []string) []byte {
			var b strings.Builder
			b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n")
			b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
			for i, p := range pieces {
				if i == 1 {
					b.WriteString("event: ping\ndata: {\"type\": \"ping\"}\n\n")
				}
				b.WriteString("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":" + rawQuote(p) + "}}\n\n")
			}
			b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
			b.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":5}}\n\n")
			b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
			return []byte(b.String())
		},
		read: func(t testing.TB, b []byte) (string, bool) {
			var text strings.Builder
			for _, e := range sseEvents(t, b) {
				m := decodeJSON(t, e[1])
				if e[0] == "error" || str(m["type"]) == "error" {
					return text.String(), true
				}
				if str(m["type"]) == "content_block_delta" {
					text.WriteString(str(dig(m, "delta", "text")))
				}
			}
			return text.String(), false
		},
	},
	{
		name: "gemini", prov: google.New("http://x"), target: provider.Target{Rest: "models/gemini:streamGenerateContent"}, contentType: "text/event-stream",
		build: func(pieces []string) []byte {
			var b strings.Builder
			for i, p := range pieces {
				fin := ""
				if i == len(pieces)-1 {
					fin = `,"finishReason":"STOP"`
				}
				b.WriteString(`data: {"candidates":[{"content":{"parts":[{"text":` + rawQuote(p) + `}],"role":"model"},"index":0` + fin + `}],"modelVersion":"gemini"}` + "\r\n\r\n")
			}
			b.WriteString(`data: {"candidates":[],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":5,"totalTokenCount":8}}` + "\r\n\r\n")
			return []byte(b.String())
		},
		read: func(t testing.TB, b []byte) (string, bool) {
			var text strings.Builder
			for _, e := range sseEvents(t, b) {
				m := decodeJSON(t, e[1])
				if m["error"] != nil {
					return text.String(), true
				}
				parts, _ := dig(m, "candidates", 0, "content", "parts").([]any)
				for _, p := range parts {
					text.WriteString(str(dig(p, "text")))
				}
			}
			return text.String(), false
		},
	},
}

func bedrockShapes(t testing.TB) []streamShape {
	p, err := bedrock.New("http://x/{region}")
	if err != nil {
		t.Fatal(err)
	}
	msg := func(typ string, payload []byte) []byte {
		var h eventstream.Headers
		h.Set(":event-type", eventstream.StringValue(typ))
		h.Set(":content-type", eventstream.StringValue("application/json"))
		h.Set(":message-type", eventstream.StringValue("event"))
		var b bytes.Buffer
		if err := eventstream.NewEncoder().Encode(&b, eventstream.Message{Headers: h, Payload: payload}); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	chunk := func(inner string) []byte {
		return msg("chunk", []byte(`{"bytes":"`+base64.StdEncoding.EncodeToString([]byte(inner))+`","p":"abc"}`))
	}
	read := func(t testing.TB, b []byte) (string, bool) {
		var text strings.Builder
		dec := eventstream.NewDecoder()
		r := bytes.NewReader(b)
		for r.Len() > 0 {
			m, err := dec.Decode(r, nil)
			if err != nil {
				t.Fatalf("client cannot decode the event stream: %v", err)
			}
			if v := m.Headers.Get(":message-type"); v != nil && v.String() == "exception" {
				return text.String(), true
			}
			payload := decodeJSON(t, string(m.Payload))
			switch m.Headers.Get(":event-type").String() {
			case "contentBlockDelta":
				text.WriteString(str(dig(payload, "delta", "text")))
			case "chunk":
				inner, err := base64.StdEncoding.DecodeString(str(payload["bytes"]))
				if err != nil {
					t.Fatal(err)
				}
				text.WriteString(str(dig(decodeJSON(t, string(inner)), "delta", "text")))
			}
		}
		return text.String(), false
	}
	return []streamShape{
		{
			name: "bedrock converse", prov: p, target: provider.Target{Rest: "model/m/converse-stream"}, contentType: "application/vnd.amazon.eventstream",
			build: func(pieces []string) []byte {
				var b []byte
				b = append(b, msg("messageStart", []byte(`{"role":"assistant","p":"x"}`))...)
				for _, piece := range pieces {
					b = append(b, msg("contentBlockDelta", []byte(`{"contentBlockIndex":0,"delta":{"text":`+rawQuote(piece)+`},"p":"xy"}`))...)
				}
				b = append(b, msg("contentBlockStop", []byte(`{"contentBlockIndex":0}`))...)
				b = append(b, msg("messageStop", []byte(`{"stopReason":"end_turn"}`))...)
				b = append(b, msg("metadata", []byte(`{"usage":{"inputTokens":3,"outputTokens":5,"totalTokens":8},"metrics":{"latencyMs":1}}`))...)
				return b
			},
			read: read,
		},
		{
			name: "bedrock invoke", prov: p, target: provider.Target{Rest: "model/m/invoke-with-response-stream"}, contentType: "application/vnd.amazon.eventstream",
			build: func(pieces []string) []byte {
				var b []byte
				b = append(b, chunk(`{"type":"message_start","message":{"model":"claude","content":[],"usage":{"input_tokens":3,"output_tokens":1}}}`)...)
				for _, piece := range pieces {
					b = append(b, chunk(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`+rawQuote(piece)+`}}`)...)
				}
				b = append(b, chunk(`{"type":"content_block_stop","index":0}`)...)
				b = append(b, chunk(`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":3,"outputTokenCount":5}}`)...)
				return b
			},
			read: read,
		},
	}
}

func allShapes(t testing.TB) []streamShape {
	return append(append([]streamShape(nil), sseShapes...), bedrockShapes(t)...)
}

func responseRules(t testing.TB, rules ...policy.Rule) *policy.Set {
	t.Helper()
	for i := range rules {
		rules[i].ID = "00000000-0000-0000-0000-00000000000" + strconv.Itoa(i)
		rules[i].Enabled = true
		if rules[i].Direction == "" {
			rules[i].Direction = policy.DirectionResponse
		}
		if rules[i].Name == "" {
			rules[i].Name = rules[i].Type + " " + rules[i].Action
		}
	}
	set, err := policy.Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// relayGuarded runs relayStream over an upstream stream and returns what
// the client received and the call (outcome, violations, usage).
func relayGuarded(t testing.TB, sh streamShape, set *policy.Set, upstream []byte, oneByte bool) ([]byte, *call) {
	t.Helper()
	p := &Proxy{log: slog.New(slog.DiscardHandler), opts: Options{IdleTimeout: time.Minute}, now: time.Now}
	c := &call{prov: sh.prov, rules: set, target: sh.target, outcome: usage.OutcomeOK, model: "m",
		key: &keys.Key{ID: "k", Env: "live"}, tenant: &platform.Tenant{}}
	rec := httptest.NewRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var body io.Reader = bytes.NewReader(upstream)
	if oneByte {
		body = iotest.OneByteReader(body)
	}
	p.relayStream(ctx, cancel, rec, sh.prov.Framing(sh.contentType), body, c)
	return rec.Body.Bytes(), c
}

const (
	splitKey   = "AKIAZ7QW3RTY5UIOP2LK"
	splitEmail = "john.doe@example.com"
)

// splitPieces carries an e-mail and an AWS key split across events, an
// escape, and a character split across two events.
var splitPieces = []string{"Reach me at jo", "hn.doe@exam", "ple.com or use \"key\" AKIAZ7QW", "3RTY5UIOP2LK today \xe6\x97", "\xa5\xe6\x9c\xac."}

func TestStreamGuardRedactsAcrossEvents(t *testing.T) {
	set := responseRules(t,
		policy.Rule{Type: policy.TypePII, Action: policy.ActionRedact, Config: []byte(`{"kinds":["email"]}`)},
		policy.Rule{Type: policy.TypeSecrets, Action: policy.ActionRedact, Config: []byte(`{}`)},
	)
	want := "Reach me at [REDACTED:EMAIL] or use \"key\" [REDACTED:AWS_ACCESS_KEY] today 日本."
	for _, sh := range allShapes(t) {
		for _, oneByte := range []bool{false, true} {
			t.Run(sh.name+map[bool]string{true: " byte by byte"}[oneByte], func(t *testing.T) {
				out, c := relayGuarded(t, sh, set, sh.build(splitPieces), oneByte)
				text, errored := sh.read(t, out)
				if errored || text != want {
					t.Fatalf("client text %q (error event %v), want %q", text, errored, want)
				}
				if bytes.Contains(out, []byte("doe@")) || bytes.Contains(out, []byte("3RTY5UIOP2LK")) {
					t.Fatalf("a match reached the client: %q", out)
				}
				if c.outcome != usage.OutcomeRedacted || len(c.violations) != 2 || !c.usage.Known || c.usage.TotalTokens != 8 {
					t.Fatalf("outcome %s, violations %+v, usage %+v", c.outcome, c.violations, c.usage)
				}
			})
		}
	}
}

func TestStreamGuardBlocks(t *testing.T) {
	set := responseRules(t,
		policy.Rule{Type: policy.TypeSecrets, Action: policy.ActionBlock, Name: "no keys", Config: []byte(`{}`)},
		policy.Rule{Type: policy.TypePII, Action: policy.ActionFlag, Config: []byte(`{"kinds":["email"]}`)},
	)
	for _, sh := range allShapes(t) {
		t.Run(sh.name, func(t *testing.T) {
			out, c := relayGuarded(t, sh, set, sh.build(splitPieces), false)
			text, errored := sh.read(t, out)
			if !errored || strings.Contains(text, "AKIA") || bytes.Contains(out, []byte("AKIAZ7QW")) {
				t.Fatalf("not blocked before the key: text %q, error event %v", text, errored)
			}
			if !strings.HasPrefix("Reach me at john.doe@example.com or use \"key\" ", text) {
				t.Fatalf("client text %q is not a prefix of the answer", text)
			}
			if c.outcome != usage.OutcomeBlocked || len(c.violations) != 2 {
				t.Fatalf("outcome %s, violations %+v", c.outcome, c.violations)
			}
			for _, v := range c.violations {
				if (v.Type == policy.TypeSecrets) != (v.Action == policy.ActionBlock) {
					t.Fatalf("violation %+v", v)
				}
			}
			if !bytes.Contains(out, []byte(`policy \"no keys\" (secrets); violation id `)) && !bytes.Contains(out, []byte(`policy \\\"no keys\\\"`)) &&
				!strings.Contains(sh.name, "bedrock") {
				t.Fatalf("error event does not name the policy: %q", out)
			}
		})
	}
}

// Without block or redact rules the stream is relayed byte for byte; flag
// rules see the whole text (a key split across events included).
func TestStreamGuardPassThrough(t *testing.T) {
	flags := responseRules(t, policy.Rule{Type: policy.TypeSecrets, Action: policy.ActionFlag, Config: []byte(`{}`)})
	elsewhere := responseRules(t, policy.Rule{Type: policy.TypeSecrets, Action: policy.ActionBlock, Config: []byte(`{}`),
		Scope: policy.Scope{Envs: []string{"staging"}}})
	for _, sh := range allShapes(t) {
		for name, set := range map[string]*policy.Set{"no rules": nil, "flag only": flags, "out of scope": elsewhere} {
			t.Run(sh.name+" "+name, func(t *testing.T) {
				up := sh.build(splitPieces)
				out, c := relayGuarded(t, sh, set, up, false)
				if !bytes.Equal(out, up) {
					t.Fatalf("stream altered:\n got %q\nwant %q", out, up)
				}
				if set == elsewhere && (c.outcome != usage.OutcomeOK || len(c.violations) != 0) {
					t.Fatalf("out of scope: outcome %s, violations %+v", c.outcome, c.violations)
				}
				if set == flags && (c.outcome != usage.OutcomeFlagged || len(c.violations) != 1 || c.violations[0].Action != policy.ActionFlag) {
					t.Fatalf("outcome %s, violations %+v", c.outcome, c.violations)
				}
			})
		}
	}
}

// A redact rule that matches nothing leaves the text exactly as sent
// (escapes, split characters), only later.
func TestStreamGuardKeepsText(t *testing.T) {
	set := responseRules(t, policy.Rule{Type: policy.TypeKeyword, Action: policy.ActionRedact, Config: []byte(`{"keywords":["zebra"]}`)})
	pieces := []string{"a \"quoted\"\n line\\ ", "caf\xc3", "\xa9 \u2028 ok", "\xf0\x9f", "\x98\x80 end"}
	for _, sh := range allShapes(t) {
		t.Run(sh.name, func(t *testing.T) {
			out, c := relayGuarded(t, sh, set, sh.build(pieces), true)
			text, errored := sh.read(t, out)
			if errored || text != strings.Join(pieces, "") {
				t.Fatalf("client text %q, want %q", text, strings.Join(pieces, ""))
			}
			if c.outcome != usage.OutcomeOK || len(c.violations) != 0 {
				t.Fatalf("outcome %s %+v", c.outcome, c.violations)
			}
		})
	}
}

// FuzzStreamGuard splits a text into events at arbitrary points (escapes
// and characters split across events included) and checks that no keyword
// match reaches the client, that the stream is blocked exactly when the
// text holds the blocked word, and that a text without matches arrives
// unchanged.
func FuzzStreamGuard(f *testing.F) {
	f.Add("the secret is BLUEBIRD, and zebra", []byte{3, 17, 20, 21})
	f.Add("bluebird", []byte{1, 2, 3, 4, 5, 6, 7})
	f.Add("caf\xc3\xa9 \"zeb\\ra\" zebr\na zebra\u2028", []byte{4, 5, 9})
	f.Add("日本語 zebra 日本", []byte{1, 2, 13})
	f.Add(strings.Repeat("z", 300)+"ebra", []byte{100, 200, 255})
	redact := responseRules(f, policy.Rule{Type: policy.TypeKeyword, Action: policy.ActionRedact, Config: []byte(`{"keywords":["zebra"]}`)})
	block := responseRules(f, policy.Rule{Type: policy.TypeKeyword, Action: policy.ActionBlock, Config: []byte(`{"keywords":["bluebird"]}`)})
	shapes := allShapes(f)
	f.Fuzz(func(t *testing.T, text string, cuts []byte) {
		if len(text) > 4096 {
			return
		}
		var pieces []string
		last := 0
		for _, c := range cuts {
			at := last + int(c)%(len(text)+1)
			if at > len(text) {
				break
			}
			pieces = append(pieces, text[last:at])
			last = at
		}
		pieces = append(pieces, text[last:])
		for _, sh := range shapes {
			if sh.name == "openai responses" {
				continue // its whole-text events are evaluated whole, not windowed
			}
			out, _ := relayGuarded(t, sh, redact, sh.build(pieces), false)
			got, errored := sh.read(t, out)
			if errored {
				t.Fatalf("%s: redaction ended the stream", sh.name)
			}
			if strings.Contains(strings.ToLower(got), "zebra") {
				t.Fatalf("%s: %q reached the client as %q", sh.name, text, got)
			}
			if !strings.Contains(strings.ToLower(text), "zebra") && got != jsonText(text) {
				t.Fatalf("%s: %q arrived as %q", sh.name, text, got)
			}
			out, _ = relayGuarded(t, sh, block, sh.build(pieces), false)
			got, errored = sh.read(t, out)
			has := strings.Contains(strings.ToLower(text), "bluebird")
			if errored != has || strings.Contains(strings.ToLower(got), "bluebird") {
				t.Fatalf("%s: %q: blocked %v, client text %q", sh.name, text, errored, got)
			}
		}
	})
}

// jsonText is s as a JSON decoder reads it back: each byte that is not
// valid UTF-8 becomes U+FFFD.
func jsonText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// a guard's StreamErrorEvent (400) and the shutdown's (503) must be what
// each SDK reads as an error, typed by the status in the provider's
// vocabulary.
func TestStreamErrorEventShapes(t *testing.T) {
	types := map[string][2]string{ // provider: 400 type, 503 type
		"openai chat": {`"invalid_request_error"`, `"api_error"`}, "openai responses": {`"invalid_request_error"`, `"api_error"`},
		"anthropic": {`"invalid_request_error"`, `"overloaded_error"`}, "gemini": {`"INVALID_ARGUMENT"`, `"UNAVAILABLE"`},
		"bedrock converse": {"validationException", "serviceUnavailableException"}, "bedrock invoke": {"validationException", "serviceUnavailableException"},
	}
	for _, sh := range allShapes(t) {
		st := sh.prov.(provider.StreamText)
		for i, status := range []int{http.StatusBadRequest, http.StatusServiceUnavailable} {
			out := st.StreamErrorEvent(nil, &sh.target, status, "policy_violation", "blocked \"x\"")
			if _, errored := sh.read(t, out); !errored {
				t.Errorf("%s %d: %q is not read as an error", sh.name, status, out)
			}
			if want := types[sh.name][i]; want == "" || !bytes.Contains(out, []byte(want)) {
				t.Errorf("%s %d: %q does not carry %s", sh.name, status, out, want)
			}
		}
	}
}

// A long answer in small pieces: text is released as it passes the window
// and redacted exactly as the same answer in one JSON body would be.
func TestStreamGuardLongTextMatchesWholeBody(t *testing.T) {
	set := responseRules(t,
		policy.Rule{Type: policy.TypePII, Action: policy.ActionRedact, Config: []byte(`{}`)},
		policy.Rule{Type: policy.TypeSecrets, Action: policy.ActionRedact, Config: []byte(`{}`)},
		policy.Rule{Type: policy.TypeKeyword, Action: policy.ActionRedact, Config: []byte(`{"keywords":["bluebird"],"whole_word":true}`)},
	)
	var b strings.Builder
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&b, "Line %d: write to user%d@example.com about bluebird%s, key AKIAZ7QW3RTY5UIOP2L%c, call 415-555-01%02d. ", i, i,
			map[bool]string{true: "s"}[i%3 == 0], 'A'+rune(i%20), i)
	}
	text := b.String()
	var pieces []string
	for i, n := 0, 0; i < len(text); i += n {
		n = min(3+i%5, len(text)-i)
		pieces = append(pieces, text[i:i+n])
	}
	whole := set.Evaluate(policy.Input{Body: []byte(text), Raw: true, Direction: policy.DirectionResponse})
	if !whole.Redacted {
		t.Fatal("nothing to redact")
	}
	for _, sh := range allShapes(t) {
		t.Run(sh.name, func(t *testing.T) {
			out, c := relayGuarded(t, sh, set, sh.build(pieces), false)
			got, errored := sh.read(t, out)
			if errored || got != string(whole.Body) {
				t.Fatalf("stream redacted to\n%q\nwhole body redacted to\n%q", got, whole.Body)
			}
			if c.outcome != usage.OutcomeRedacted || len(c.violations) != 3 {
				t.Fatalf("outcome %s, %d violations", c.outcome, len(c.violations))
			}
		})
	}
}

// Choices of one chunk stream are separate texts: a key split across the
// events of one choice is found although the other choice's deltas come
// between.
func TestStreamGuardChannels(t *testing.T) {
	set := responseRules(t, policy.Rule{Type: policy.TypeSecrets, Action: policy.ActionRedact, Config: []byte(`{}`)})
	ev := func(i int, s string) string {
		return `data: {"choices":[{"index":` + strconv.Itoa(i) + `,"delta":{"content":` + rawQuote(s) + `}}]}` + "\n\n"
	}
	up := ev(0, "key AKIAZ7QW") + ev(1, "other ") + ev(0, "3RTY5UIOP2LK.") + ev(1, "text") +
		`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"},{"index":1,"delta":{},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n"
	out, _ := relayGuarded(t, sseShapes[0], set, []byte(up), false)
	texts := map[float64]string{}
	for _, e := range sseEvents(t, out) {
		if e[1] == "[DONE]" {
			continue
		}
		for _, ch := range decodeJSON(t, e[1])["choices"].([]any) {
			texts[dig(ch, "index").(float64)] += str(dig(ch, "delta", "content"))
		}
	}
	if texts[0] != "key [REDACTED:AWS_ACCESS_KEY]." || texts[1] != "other text" {
		t.Fatalf("choices: %v", texts)
	}
}
