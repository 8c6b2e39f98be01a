package bedrock

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"trueportai/services/gateway/internal/metering"
	"trueportai/services/gateway/internal/metering/meteringtest"
	"trueportai/services/gateway/internal/provider"
)

func newTest(t testing.TB) *Provider {
	p, err := New("https://bedrock-runtime.{region}.amazonaws.test")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoute(t *testing.T) {
	p := newTest(t)
	tg, err := p.Route("model/us.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse-stream")
	if err != nil || tg.Model != "us.anthropic.claude-3-7-sonnet-20250219-v1:0" || !tg.Stream ||
		tg.Rest != "model/us.anthropic.claude-3-7-sonnet-20250219-v1:0/converse-stream" || tg.Credential != "bedrock" {
		t.Fatalf("%+v %v", tg, err)
	}
	if r := p.Inspect(&tg, provider.Credential{}, []byte(`{"model":"x"}`)); r.Model != tg.Model || !r.Stream {
		t.Fatalf("inspect %+v", r)
	}
	tg, err = p.Route("model/meta.llama3-8b-instruct-v1:0/invoke")
	if err != nil || tg.Stream || tg.Model != "meta.llama3-8b-instruct-v1:0" {
		t.Fatalf("%+v %v", tg, err)
	}
}

func TestMissingCredential(t *testing.T) {
	p := newTest(t)
	for _, tc := range []struct {
		c    provider.Credential
		want string
	}{
		{provider.Credential{}, "providers.bedrock.region"},
		{provider.Credential{Region: "us-east-1"}, "providers.bedrock.access_key_id (or providers.bedrock.api_key)"},
		{provider.Credential{Region: "us-east-1", AccessKeyID: "AKID"}, "providers.bedrock.secret_access_key"},
		{provider.Credential{Region: "us-east-1", AccessKeyID: "AKID", SecretAccessKey: "s"}, ""},
		{provider.Credential{Region: "us-east-1", APIKey: "bedrock-api-key"}, ""},
	} {
		if got := p.MissingCredential(nil, tc.c); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestURLRegion(t *testing.T) {
	p := newTest(t)
	tg, _ := p.Route("model/m/converse")
	if u, _, err := p.URL(&tg, provider.Credential{Region: "eu-central-1"}, ""); err != nil || u != "https://bedrock-runtime.eu-central-1.amazonaws.test/model/m/converse" {
		t.Fatalf("%q %v", u, err)
	}
	for _, bad := range []string{"", "eu-central", "evil.example/x", "us-east-1.evil", "US-EAST-1", "us-east-1/../x"} {
		if u, _, err := p.URL(&tg, provider.Credential{Region: bad}, ""); err == nil {
			t.Errorf("region %q accepted: %s", bad, u)
		}
	}
}

// TestAuthorizeSigV4 checks the signature against an independent signing of
// the same request: the body hash, service, region and time must all match.
func TestAuthorizeSigV4(t *testing.T) {
	p := newTest(t)
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return at }
	body := []byte(`{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`)
	c := provider.Credential{Region: "eu-west-3", AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", SessionToken: "tok"}
	req, _ := http.NewRequest("POST", "https://bedrock-runtime.eu-west-3.amazonaws.test/model/anthropic.claude-v2:1/converse", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if err := p.Authorize(req, c, body); err != nil {
		t.Fatal(err)
	}
	got := req.Header.Get("Authorization")
	if !strings.HasPrefix(got, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261206/eu-west-3/bedrock/aws4_request") || req.Header.Get("X-Amz-Security-Token") != "tok" {
		t.Fatalf("authorization %q, headers %v", got, req.Header)
	}
	ref, _ := http.NewRequest("POST", req.URL.String(), bytes.NewReader(body))
	ref.Header.Set("Content-Type", "application/json")
	if err := v4.NewSigner().SignHTTP(t.Context(), aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", SessionToken: "tok"},
		ref, fmt.Sprintf("%x", sha256.Sum256(body)), "bedrock", "eu-west-3", at); err != nil {
		t.Fatal(err)
	}
	if ref.Header.Get("Authorization") != got {
		t.Fatalf("signature differs from an independent signing:\n got %s\nwant %s", got, ref.Header.Get("Authorization"))
	}
	other := []byte(`{"messages":[]}`)
	req2, _ := http.NewRequest("POST", req.URL.String(), bytes.NewReader(other))
	req2.Header.Set("Content-Type", "application/json")
	_ = p.Authorize(req2, c, other)
	if req2.Header.Get("Authorization") == got {
		t.Fatal("the signature does not cover the body")
	}
}

func TestAuthorizeBearer(t *testing.T) {
	req, _ := http.NewRequest("POST", "https://x/model/m/converse", nil)
	if err := newTest(t).Authorize(req, provider.Credential{Region: "us-east-1", APIKey: "bedrock-key"}, nil); err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Authorization") != "Bearer bedrock-key" {
		t.Fatal(req.Header)
	}
}

func TestErrorBody(t *testing.T) {
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(newTest(t).ErrorBody(429, "rate_limit_exceeded", "slow down"), &e); err != nil || e.Type != "ThrottlingException" || e.Message != "slow down" {
		t.Fatalf("%+v %v", e, err)
	}
}

func TestForwardHeader(t *testing.T) {
	p := newTest(t)
	for name, want := range map[string]bool{"X-Amzn-Bedrock-Trace": true, "Content-Type": true, "X-Amz-Date": false, "X-Amz-Security-Token": false, "Authorization": false} {
		if p.ForwardHeader(name) != want {
			t.Errorf("%s: want %v", name, want)
		}
	}
}

var jsonCases = []meteringtest.JSONCase{
	{Name: "converse", Body: `{"output":{"message":{"role":"assistant","content":[{"text":"hi"}]}},"stopReason":"end_turn","usage":{"inputTokens":12,"outputTokens":3,"totalTokens":15},"metrics":{"latencyMs":20}}`,
		Want: metering.Usage{PromptTokens: 12, CompletionTokens: 3, TotalTokens: 15, Known: true}},
	{Name: "converse cached", Body: `{"usage":{"inputTokens":10,"outputTokens":5,"totalTokens":115,"cacheReadInputTokens":100,"cacheWriteInputTokens":0}}`,
		Want: metering.Usage{PromptTokens: 110, CompletionTokens: 5, TotalTokens: 115, CachedTokens: 100, Known: true}},
	{Name: "anthropic invoke", Body: `{"id":"msg_1","type":"message","model":"claude-3-5-sonnet-20240620","content":[{"type":"text","text":"x"}],"usage":{"input_tokens":7,"output_tokens":2}}`,
		Want: metering.Usage{Model: "claude-3-5-sonnet-20240620", PromptTokens: 7, CompletionTokens: 2, TotalTokens: 9, Known: true}},
	{Name: "llama invoke", Body: `{"generation":"hi","prompt_token_count":11,"generation_token_count":4,"stop_reason":"stop"}`,
		Want: metering.Usage{PromptTokens: 11, CompletionTokens: 4, TotalTokens: 15, Known: true}},
	{Name: "no usage", Body: `{"results":[{"outputText":"x"}]}`, Want: metering.Usage{}},
	{Name: "negative", Body: `{"usage":{"inputTokens":-1,"outputTokens":3}}`, Want: metering.Usage{}},
	{Name: "not json", Body: `{"usage":`, Want: metering.Usage{}},
}

func TestMeterJSON(t *testing.T) { meteringtest.RunJSONCases(t, newTest(t), jsonCases) }

func TestMeterHeaders(t *testing.T) {
	p := newTest(t)
	h := http.Header{}
	if u := p.MeterHeaders(h, metering.Usage{Model: "m"}); u.Known {
		t.Fatal("no headers, no usage")
	}
	h.Set("X-Amzn-Bedrock-Input-Token-Count", "21")
	h.Set("X-Amzn-Bedrock-Output-Token-Count", "8")
	if u := p.MeterHeaders(h, metering.Usage{Model: "m"}); u != (metering.Usage{Model: "m", PromptTokens: 21, CompletionTokens: 8, TotalTokens: 29, Known: true}) {
		t.Fatalf("%+v", u)
	}
	h.Set("X-Amzn-Bedrock-Output-Token-Count", "-8")
	if u := p.MeterHeaders(h, metering.Usage{}); u.Known {
		t.Fatal("a bad counter must make usage unknown")
	}
}

// encode builds event-stream messages as Bedrock sends them.
func encode(t testing.TB, msgs ...eventstream.Message) []byte {
	var b bytes.Buffer
	enc := eventstream.NewEncoder()
	for _, m := range msgs {
		if err := enc.Encode(&b, m); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func event(typ, payload string) eventstream.Message {
	var h eventstream.Headers
	h.Set(":event-type", eventstream.StringValue(typ))
	h.Set(":content-type", eventstream.StringValue("application/json"))
	h.Set(":message-type", eventstream.StringValue("event"))
	return eventstream.Message{Headers: h, Payload: []byte(payload)}
}

func chunk(inner string) eventstream.Message {
	return event("chunk", `{"bytes":"`+base64.StdEncoding.EncodeToString([]byte(inner))+`"}`)
}

// relay frames a stream and meters it the way the proxy does, returning
// the bytes it would forward.
func relay(t *testing.T, p *Provider, stream []byte) (metering.StreamMeter, []byte, error) {
	fr := p.Framing("application/vnd.amazon.eventstream").Framer(bytes.NewReader(stream))
	defer fr.Release()
	m := p.NewStreamMeter(false)
	var out []byte
	for {
		raw, name, data, err := fr.Next()
		out = append(out, raw...)
		if err != nil {
			return m, out, err
		}
		m.Event(name, data)
	}
}

func TestConverseStream(t *testing.T) {
	p := newTest(t)
	stream := encode(t,
		event("messageStart", `{"role":"assistant"}`),
		event("contentBlockDelta", `{"contentBlockIndex":0,"delta":{"text":"Hello"}}`),
		event("contentBlockStop", `{"contentBlockIndex":0}`),
		event("messageStop", `{"stopReason":"end_turn"}`),
		event("metadata", `{"usage":{"inputTokens":30,"outputTokens":2,"totalTokens":32},"metrics":{"latencyMs":100}}`),
	)
	m, out, err := relay(t, p, stream)
	if !errors.Is(err, io.EOF) || !bytes.Equal(out, stream) {
		t.Fatalf("err %v, forwarded %d of %d bytes", err, len(out), len(stream))
	}
	if !m.Done() || m.Usage() != (metering.Usage{PromptTokens: 30, CompletionTokens: 2, TotalTokens: 32, Known: true}) {
		t.Fatalf("done %v usage %+v", m.Done(), m.Usage())
	}
	// Cut before the metadata event: not done, usage unknown.
	cut := stream[:len(stream)-len(encode(t, event("metadata", `{"usage":{"inputTokens":30,"outputTokens":2,"totalTokens":32},"metrics":{"latencyMs":100}}`)))]
	if m, _, _ := relay(t, p, cut); m.Done() || m.Usage().Known {
		t.Fatal("a stream cut before metadata is complete")
	}
}

func TestInvokeWithResponseStream(t *testing.T) {
	p := newTest(t)
	stream := encode(t,
		chunk(`{"type":"message_start","message":{"model":"claude-3-haiku","usage":{"input_tokens":14,"output_tokens":1}}}`),
		chunk(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"usage: lots"}}`),
		chunk(`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}`),
		chunk(`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":14,"outputTokenCount":9,"invocationLatency":300,"firstByteLatency":100}}`),
	)
	m, _, err := relay(t, p, stream)
	if !errors.Is(err, io.EOF) || !m.Done() {
		t.Fatalf("err %v done %v", err, m.Done())
	}
	if u := m.Usage(); u != (metering.Usage{Model: "claude-3-haiku", PromptTokens: 14, CompletionTokens: 9, TotalTokens: 23, Known: true}) {
		t.Fatalf("%+v", u)
	}
	// Without the final metrics the Anthropic counters still meter, not done.
	m, _, _ = relay(t, p, stream[:len(stream)-len(encode(t, chunk(`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":14,"outputTokenCount":9,"invocationLatency":300,"firstByteLatency":100}}`)))])
	if m.Done() || m.Usage().CompletionTokens != 9 || m.Usage().PromptTokens != 14 {
		t.Fatalf("partial: done %v %+v", m.Done(), m.Usage())
	}
}

func TestFramerRejectsCorruptAndTruncated(t *testing.T) {
	p := newTest(t)
	stream := encode(t, event("messageStart", `{"role":"assistant"}`), event("metadata", `{"usage":{"inputTokens":1,"outputTokens":1}}`))
	bad := bytes.Clone(stream)
	bad[len(bad)-1] ^= 0xff // message CRC
	if _, _, err := relay(t, p, bad); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("corrupt CRC: %v", err)
	}
	if _, out, err := relay(t, p, stream[:len(stream)-3]); !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(out, stream[:len(stream)-3]) {
		t.Fatalf("truncated: %v (forwarded %d bytes)", err, len(out))
	}
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}
	if _, _, err := relay(t, p, huge); !errors.Is(err, errBadFrame) {
		t.Fatalf("huge length: %v", err)
	}
	exc := encode(t, func() eventstream.Message {
		var h eventstream.Headers
		h.Set(":message-type", eventstream.StringValue("exception"))
		h.Set(":exception-type", eventstream.StringValue("throttlingException"))
		return eventstream.Message{Headers: h, Payload: []byte(`{"message":"slow"}`)}
	}())
	fr := p.Framing("application/vnd.amazon.eventstream").Framer(bytes.NewReader(exc))
	defer fr.Release()
	if _, name, _, err := fr.Next(); err != nil || string(name) != "throttlingException" {
		t.Fatalf("exception name %q %v", name, err)
	}
	if p.Framing("application/json") != nil {
		t.Fatal("JSON is not a stream")
	}
}

func TestBuffered(t *testing.T) {
	p := newTest(t)
	two := encode(t, event("a", `{}`), event("b", `{}`))
	fr := p.Framing("application/vnd.amazon.eventstream").Framer(bytes.NewReader(two))
	defer fr.Release()
	if _, _, _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	if !fr.Buffered() {
		t.Fatal("the second message is buffered")
	}
	if _, _, _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	if fr.Buffered() {
		t.Fatal("nothing left")
	}
}

func FuzzStream(f *testing.F) {
	f.Add(encode(f, event("metadata", `{"usage":{"inputTokens":1,"outputTokens":1}}`)))
	f.Add(encode(f, chunk(`{"amazon-bedrock-invocationMetrics":{"inputTokenCount":1e3,"outputTokenCount":"2"}}`)))
	f.Add([]byte{0, 0, 0, 16, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := newTest(t)
		m, out, err := relay(t, p, b)
		if err == nil {
			t.Fatal("relay ended without an error")
		}
		if !bytes.HasPrefix(b, out) {
			t.Fatal("forwarded bytes that were not received")
		}
		meteringtest.CheckUsage(t, m.Usage())
		meteringtest.CheckUsage(t, MeterJSON(b))
	})
}
