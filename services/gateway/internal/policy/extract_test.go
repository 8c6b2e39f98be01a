package policy

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// extracted returns the extracted segments (and which are system text).
func extracted(p Format, dir direction, body string) (texts []string, system []bool, raw bool) {
	st := &evalState{}
	st.reset(&Input{Provider: p, Body: []byte(body)}, dir, defaultLexicon)
	st.ensureText()
	for _, sg := range st.segs {
		texts = append(texts, string(st.text[sg.textStart:sg.textEnd]))
		system = append(system, sg.system)
	}
	return texts, system, st.raw
}

func TestExtraction(t *testing.T) {
	cases := []struct {
		name   string
		p      Format
		dir    direction
		body   string
		want   []string
		system []int // indexes of system segments
	}{
		{"openai chat string+parts+tool", pOpenAI, dirRequest,
			`{"model":"gpt-4o","messages":[{"role":"system","content":"sys"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,QUtJQQ=="}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c","content":"result"},{"role":"user","name":"bob","content":"bye"}]}`,
			[]string{"sys", "hi", "result", "bye"}, []int{0}},
		{"openai tool content parts", pAzure, dirRequest,
			`{"messages":[{"role":"tool","tool_call_id":"c","content":[{"type":"text","text":"part1"},{"type":"text","text":"part2"}]}]}`,
			[]string{"part1", "part2"}, nil},
		{"legacy prompt", pOpenAI, dirRequest, `{"model":"gpt-3.5-turbo-instruct","prompt":"say hi","max_tokens":5}`, []string{"say hi"}, nil},
		{"legacy prompt array", pOpenAI, dirRequest, `{"prompt":["a","b"]}`, []string{"a", "b"}, nil},
		{"embeddings string", pOpenAI, dirRequest, `{"model":"text-embedding-3-small","input":"embed me"}`, []string{"embed me"}, nil},
		{"embeddings array and tokens", pOpenAI, dirRequest, `{"input":["x","y"]}`, []string{"x", "y"}, nil},
		{"embeddings token ids", pOpenAI, dirRequest, `{"input":[[1,2,3]]}`, nil, nil},
		{"responses api", pOpenAI, dirRequest,
			`{"model":"gpt-4.1","instructions":"be brief","input":[{"role":"developer","content":"dev says"},{"role":"user","content":[{"type":"input_text","text":"question"},{"type":"input_image","image_url":"https://x/y.png"}]},{"type":"function_call_output","call_id":"c","output":"tool out"}]}`,
			[]string{"be brief", "dev says", "question", "tool out"}, []int{0, 1}},
		{"responses api string input", pOpenAI, dirRequest, `{"input":"just text","instructions":"sys"}`, []string{"just text", "sys"}, []int{1}},
		{"anthropic", pAnthropic, dirRequest,
			`{"model":"claude-sonnet-4","max_tokens":1024,"system":[{"type":"text","text":"sys block","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"plain"},{"role":"assistant","content":[{"type":"text","text":"thinking out loud"},{"type":"tool_use","id":"t","name":"f","input":{"q":"not text"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"tool string"},{"type":"tool_result","tool_use_id":"u","content":[{"type":"text","text":"tool block"}]},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]}`,
			[]string{"sys block", "plain", "thinking out loud", "tool string", "tool block"}, []int{0}},
		{"anthropic system string", pAnthropic, dirRequest, `{"system":"s","messages":[]}`, []string{"s"}, []int{0}},
		{"gemini", pGoogle, dirRequest,
			`{"systemInstruction":{"parts":[{"text":"sys"}]},"contents":[{"role":"user","parts":[{"text":"a"},{"inlineData":{"mimeType":"image/png","data":"AAAA"}}]},{"role":"model","parts":[{"text":"b"}]}],"generationConfig":{"maxOutputTokens":100}}`,
			[]string{"sys", "a", "b"}, []int{0}},
		{"gemini function response (deep)", pGoogle, dirRequest,
			`{"contents":[{"role":"function","parts":[{"functionResponse":{"name":"search","response":{"results":[{"title":"t1","score":0.5,"body":{"text":"b1","tags":["x"]}}],"note":"n"}}}]}]}`,
			[]string{"t1", "b1", "x", "n"}, nil},
		{"anthropic document text", pAnthropic, dirRequest,
			`{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"content","content":[{"type":"text","text":"doc"}]}},{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0"}}]}]}`,
			[]string{"doc"}, nil},
		{"gemini snake case + embed", pGoogle, dirRequest,
			`{"system_instruction":{"parts":[{"text":"sys"}]},"content":{"parts":[{"text":"emb"}]}}`,
			[]string{"sys", "emb"}, []int{0}},
		{"openai response", pOpenAI, dirResponse,
			`{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"answer"}},{"index":1,"text":"legacy"}],"usage":{"prompt_tokens":1}}`,
			[]string{"answer", "legacy"}, nil},
		{"openai responses api output", pOpenAI, dirResponse,
			`{"output":[{"type":"message","content":[{"type":"output_text","text":"out"}]}]}`, []string{"out"}, nil},
		{"anthropic response", pAnthropic, dirResponse,
			`{"content":[{"type":"text","text":"hello"},{"type":"tool_use","input":{"text":"no"}}]}`, []string{"hello"}, nil},
		{"gemini response", pGoogle, dirResponse,
			`{"candidates":[{"content":{"parts":[{"text":"g1"},{"text":"g2"}]}}]}`, []string{"g1", "g2"}, nil},
		{"gemini response array", pGoogle, dirResponse,
			`[{"candidates":[{"content":{"parts":[{"text":"c1"}]}}]},{"candidates":[{"content":{"parts":[{"text":"c2"}]}}]}]`, []string{"c1", "c2"}, nil},
		{"request paths not used for responses", pOpenAI, dirResponse, `{"messages":[{"role":"user","content":"x"}]}`, nil, nil},
		{"escapes", pOpenAI, dirRequest, `{"messages":[{"role":"user","cont\u0065nt":"a\u0041\n\"q\" \ud83d\ude00 \ud800 é\/"}]}`, []string{"aA\n\"q\" 😀 \uFFFD é/"}, nil},
		{"role escaped", pOpenAI, dirRequest, `{"messages":[{"role":"syst\u0065m","content":"s"}]}`, []string{"s"}, []int{0}},
	}
	// Without a wire format every string value is text (nothing escapes).
	body := `{"contents":[{"parts":[{"text":"g"}]}],"messages":[{"role":"user","content":"o"}],"n":1}`
	if texts, _, raw := extracted(nil, dirRequest, body); raw || !reflect.DeepEqual(texts, []string{"g", "user", "o"}) {
		t.Errorf("no provider: raw=%v texts=%q", raw, texts)
	}
	for _, c := range cases {
		texts, system, raw := extracted(c.p, c.dir, c.body)
		if raw {
			t.Errorf("%s: body not parsed as JSON", c.name)
			continue
		}
		if !reflect.DeepEqual(texts, c.want) && !(len(texts) == 0 && len(c.want) == 0) {
			t.Errorf("%s: got %q, want %q", c.name, texts, c.want)
			continue
		}
		for i, s := range system {
			wantSys := false
			for _, j := range c.system {
				wantSys = wantSys || j == i
			}
			if s != wantSys {
				t.Errorf("%s: segment %d system=%v", c.name, i, s)
			}
		}
	}
}

func TestExtractionMaxTokensAndModel(t *testing.T) {
	for _, c := range []struct {
		p     Format
		body  string
		field string
		v     float64
		model string
	}{
		{pOpenAI, `{"model":"gpt-4o","max_tokens":100,"max_completion_tokens":2000}`, "max_completion_tokens", 2000, "gpt-4o"},
		{pOpenAI, `{"model":"gpt-4.1","max_output_tokens":3e3}`, "max_output_tokens", 3000, "gpt-4.1"},
		{pAnthropic, `{"model":"claude-x","max_tokens":4096,"metadata":{"max_tokens":9999999}}`, "max_tokens", 4096, "claude-x"},
		{pGoogle, `{"generationConfig":{"temperature":1,"maxOutputTokens":8192}}`, "maxOutputTokens", 8192, ""},
	} {
		st := &evalState{}
		st.reset(&Input{Provider: c.p, Body: []byte(c.body)}, dirRequest, defaultLexicon)
		st.ensureText()
		if !st.maxOutSet || st.maxOutField != c.field || st.maxOut != c.v || st.modelName() != c.model {
			t.Errorf("%s: got %v %q %v model %q", c.body, st.maxOutSet, st.maxOutField, st.maxOut, st.modelName())
		}
	}
}

// TestScannerMatchesEncodingJSON: the scanner accepts exactly what
// encoding/json accepts.
func TestScannerMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		``, ` `, `{}`, `[]`, `{"a":1}`, `{"a":1,}`, `[1,]`, `{"a" 1}`, `{a:1}`, `"x"`, `"\x"`, `"\u12"`, `"\u12zz"`,
		"\"\x01\"", `01`, `-`, `-0`, `1.`, `1.5e`, `1e+5`, `tru`, `true false`, `nul`, `[1 2]`, `{"a":{"b":[{"c":null}]}}`,
		"\"\xff\xfe\"", `{"a":"b"}x`, `  [ ]  `, `{"":""}`, `[[[[[]]]]]`, `"\/\b\f"`, `{"messages":[{"content":"x"`,
		`{"messages":[{"content":"x"}]`, `1e400`, `{"a":-}`, `[-01]`, `[.5]`, `["a",]`,
	} {
		st := &evalState{}
		got := st.parseJSON([]byte(s), pOpenAI.TextPaths(false))
		if got != json.Valid([]byte(s)) {
			t.Errorf("%q: scanner %v, encoding/json %v", s, got, !got)
		}
	}
}

func TestInvalidJSONScannedRaw(t *testing.T) {
	set := mustCompile(t, rule("pii", TypePII, ActionRedact, map[string]any{"kinds": []string{"email"}}))
	body := []byte(`not json: contact a.b@example.com`)
	r := set.Evaluate(Input{Provider: pOpenAI, Body: body})
	if !r.Redacted || string(r.Body) != `not json: contact [REDACTED:EMAIL]` {
		t.Fatalf("got %q", r.Body)
	}
}

// roundTrip redacts body and checks: valid JSON, secrets gone, and the
// output equals the input with exactly the expected substrings replaced.
func roundTrip(t *testing.T, p Format, dir string, body string, repl map[string]string) {
	t.Helper()
	set := mustCompile(t,
		rule("pii", TypePII, ActionRedact, nil),
		Rule{ID: "sec", Name: "sec", Type: TypeSecrets, Action: ActionRedact, Enabled: true, Direction: DirectionBoth},
		Rule{ID: "pii-resp", Name: "pii-resp", Type: TypePII, Action: ActionRedact, Enabled: true, Direction: DirectionResponse},
	)
	r := set.Evaluate(Input{Provider: p, Body: []byte(body), Direction: dir})
	if !r.Redacted || r.Blocked {
		t.Fatalf("%s: not redacted: %+v", p, r)
	}
	if !json.Valid(r.Body) {
		t.Fatalf("%s: invalid JSON out: %s", p, r.Body)
	}
	want := body
	for from, to := range repl {
		if !strings.Contains(want, from) {
			t.Fatalf("test bug: %q not in body", from)
		}
		want = strings.ReplaceAll(want, from, to)
		if bytes.Contains(r.Body, []byte(from)) {
			t.Errorf("%s: %q still in output", p, from)
		}
	}
	if string(r.Body) != want {
		t.Errorf("%s: output differs from expected\n got: %s\nwant: %s", p, r.Body, want)
	}
}

func TestRedactionRoundTripPerProvider(t *testing.T) {
	email := "jane.doe@example.com"
	card := "4242 4242 4242 4242"
	key := fakeOpenAIKey
	rep := map[string]string{email: "[REDACTED:EMAIL]", card: "[REDACTED:CREDIT_CARD]", key: "[REDACTED:OPENAI_KEY]"}

	// OpenAI chat: big numbers, unknown fields, odd whitespace are kept byte for byte.
	roundTrip(t, pOpenAI, "", `{"model":"gpt-4o", "seed": 12345678901234567890, "temperature":0.70000000000000001,
 "messages":[{"role":"system","content":"You help."},{"role":"user","content":[{"type":"text","text":"mail `+email+` card `+card+`"},{"type":"image_url","image_url":{"url":"https://img/`+email+`"}}]},
  {"role":"tool","tool_call_id":"c","content":"key=`+key+`"}],"x_unknown":{"nested":[1.5e300,true,null]},"user":"`+email+`-not-text"}`,
		map[string]string{"mail " + email: "mail [REDACTED:EMAIL]", card: rep[card], "key=" + key: "key=[REDACTED:OPENAI_KEY]"})

	roundTrip(t, pAzure, "", `{"messages":[{"role":"user","content":"`+email+`"}],"max_tokens":10}`, map[string]string{`"` + email + `"`: `"[REDACTED:EMAIL]"`})

	roundTrip(t, pAnthropic, "", `{"model":"claude-sonnet-4","max_tokens":1024,"system":[{"type":"text","text":"Owner: `+email+`"}],
"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"card `+card+`"},{"type":"text","text":"`+key+`"}]}]}`,
		map[string]string{"Owner: " + email: "Owner: [REDACTED:EMAIL]", card: rep[card], `"` + key + `"`: `"[REDACTED:OPENAI_KEY]"`})

	roundTrip(t, pGoogle, "", `{"contents":[{"role":"user","parts":[{"text":"card `+card+` and `+email+`"}]}],"systemInstruction":{"parts":[{"text":"`+key+`"}]},"generationConfig":{"maxOutputTokens":256,"topP":0.95}}`,
		map[string]string{card: rep[card], "and " + email: "and [REDACTED:EMAIL]", `"` + key + `"`: `"[REDACTED:OPENAI_KEY]"`})

	// responses
	roundTrip(t, pOpenAI, DirectionResponse, `{"id":"chatcmpl-1","choices":[{"index":0,"message":{"role":"assistant","content":"Sure: `+email+`"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":12}}`,
		map[string]string{"Sure: " + email: "Sure: [REDACTED:EMAIL]"})
	roundTrip(t, pAnthropic, DirectionResponse, `{"id":"msg_1","type":"message","content":[{"type":"text","text":"`+card+`"}],"usage":{"input_tokens":3}}`,
		map[string]string{card: rep[card]})
	roundTrip(t, pGoogle, DirectionResponse, `{"candidates":[{"content":{"parts":[{"text":"`+email+`"}],"role":"model"}}],"usageMetadata":{"totalTokenCount":5}}`,
		map[string]string{`"` + email + `"`: `"[REDACTED:EMAIL]"`})
}

func TestRedactionWithEscapes(t *testing.T) {
	set := mustCompile(t, rule("pii", TypePII, ActionRedact, map[string]any{"kinds": []string{"email"}}))
	body := `{"messages":[{"role":"user","content":"line1\nmail: a@b.com \u00e9 \"q\" \u2028 tab\t<>&"}],"n":1.0}`
	r := set.Evaluate(Input{Provider: pOpenAI, Body: []byte(body)})
	if !r.Redacted || !json.Valid(r.Body) {
		t.Fatalf("got %s", r.Body)
	}
	var out struct {
		Messages []struct{ Content string }
		N        json.Number
	}
	d := json.NewDecoder(bytes.NewReader(r.Body))
	d.UseNumber()
	if err := d.Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Messages[0].Content != "line1\nmail: [REDACTED:EMAIL] é \"q\" \u2028 tab\t<>&" || out.N != "1.0" {
		t.Fatalf("decoded %+v", out)
	}
	if !bytes.HasSuffix(r.Body, []byte(`"}],"n":1.0}`)) {
		t.Fatalf("tail changed: %s", r.Body)
	}
}

func TestRedactionInvalidUTF8(t *testing.T) {
	set := mustCompile(t, rule("pii", TypePII, ActionRedact, map[string]any{"kinds": []string{"email"}}))
	body := "{\"prompt\":\"\xff a@b.com\"}"
	r := set.Evaluate(Input{Provider: pOpenAI, Body: []byte(body)})
	if string(r.Body) != `{"prompt":"\ufffd [REDACTED:EMAIL]"}` {
		t.Fatalf("got %q", r.Body)
	}
}

func TestRedactionSpanningSegments(t *testing.T) {
	// A regex may match across the "\n" that joins two strings: each part
	// is redacted in its own string.
	set := mustCompile(t, rule("re", TypeRegex, ActionRedact, map[string]any{"pattern": `tail\nhead`}))
	body := `{"messages":[{"role":"user","content":"a tail"},{"role":"user","content":"head b"}]}`
	r := set.Evaluate(Input{Provider: pOpenAI, Body: []byte(body)})
	want := `{"messages":[{"role":"user","content":"a [REDACTED:REGEX]"},{"role":"user","content":"[REDACTED:REGEX] b"}]}`
	if string(r.Body) != want {
		t.Fatalf("got %s", r.Body)
	}
}
