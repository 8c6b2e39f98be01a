package policy

import (
	"trueportai/services/gateway/internal/provider/anthropic"
	"trueportai/services/gateway/internal/provider/azure"
	"trueportai/services/gateway/internal/provider/google"
	"trueportai/services/gateway/internal/provider/openai"

	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// Test secrets are generated at run time from a fixed seed, so the
// repository holds no string that a secret scanner would flag.

const (
	alphaUpperDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	alphaB62         = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	alphaB64         = alphaB62 + "+/"
)

func randStr(seed uint64, alphabet string, n int) string {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		s := string(b)
		// keep generated keys free of placeholder words and with all classes
		d, u, l := classMix(b)
		if !placeholder(b) && (d > 0 || !strings.ContainsAny(alphabet, "0123456789")) &&
			(u > 0 || !strings.ContainsAny(alphabet, "ABC")) && (l > 0 || !strings.ContainsAny(alphabet, "abc")) {
			return s
		}
		seed++
		r = rand.New(rand.NewPCG(seed, seed))
	}
}

// randStrRaw is randStr without the placeholder filter (for recall tests).
func randStrRaw(seed uint64, alphabet string, n int) string {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func join(parts ...string) string { return strings.Join(parts, "") }

var (
	fakeAWSKey       = join("AK", "IA", randStr(1, alphaUpperDigits, 16))
	fakeAWSSecret    = randStr(2, alphaB64, 40)
	fakeGCPKey       = join("AI", "za", randStr(3, alphaB62+"-_", 35))
	fakeGitHubToken  = join("gh", "p_", randStr(4, alphaB62, 36))
	fakeGitHubPAT    = join("github", "_pat_", randStr(5, alphaB62, 22), "_", randStr(6, alphaB62, 59))
	fakeGitLabToken  = join("gl", "pat-", randStr(7, alphaB62, 20))
	fakeOpenAIKey    = join("sk", "-proj-", randStr(8, alphaB62+"-_", 120))
	fakeOpenAILegacy = join("sk", "-", randStr(9, alphaB62, 48))
	fakeAnthropicKey = join("sk", "-ant-api03-", randStr(10, alphaB62+"-_", 93), "AA")
	fakeSlackToken   = join("xo", "xb-", "1234567890123-4567890123456-", randStr(11, alphaB62, 24))
	fakeSlackHook    = join("https://hooks.", "slack.com/services/T", randStr(12, alphaUpperDigits, 8), "/B", randStr(13, alphaUpperDigits, 8), "/", randStr(14, alphaB62, 24))
	fakeStripeKey    = join("sk", "_live_", randStr(15, alphaB62, 24))
	fakeNPMToken     = join("np", "m_", randStr(16, alphaB62, 36))
	fakeJWT          = join("ey", "JhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.", randStr(17, alphaB62+"-_", 43))
	fakePrivateKey   = "-----BEGIN RSA " + "PRIVATE KEY-----\n" + wrap(randStr(18, alphaB64, 256), 64) + "\n-----END RSA " + "PRIVATE KEY-----"
)

func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n])
		b.WriteByte('\n')
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

func mustRaw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func mustCompile(t testing.TB, rules ...Rule) *Set {
	t.Helper()
	s, err := Compile(rules)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

func rule(id, typ, action string, cfg any) Rule {
	r := Rule{ID: id, Name: id, Type: typ, Action: action, Enabled: true}
	if cfg != nil {
		r.Config = mustRaw(cfg)
	}
	return r
}

// chatBody builds an OpenAI chat request with the given user contents.
func chatBody(model string, user ...string) []byte {
	msgs := []map[string]any{{"role": "system", "content": "You are a helpful assistant."}}
	for _, u := range user {
		msgs = append(msgs, map[string]any{"role": "user", "content": u})
	}
	b, _ := json.Marshal(map[string]any{"model": model, "messages": msgs, "temperature": 0.7})
	return b
}

// detect runs one detector kind over plain text and returns the matched strings.
func detect(k kind, text string) []string {
	st := &evalState{}
	st.in = Input{Body: nil}
	st.text = []byte(text)
	st.segs = []segment{{textStart: 0, textEnd: len(text)}}
	st.parsed = true
	st.chars = -1
	st.lex = defaultLexicon
	var out []string
	if isPII(k) {
		st.collectPII(1 << k)
	} else {
		st.collectSecrets(1 << k)
	}
	for _, h := range st.hits {
		out = append(out, text[h.start:h.end])
	}
	return out
}

// The providers' wire formats, as the proxy hands them to the engine.
var (
	pOpenAI    Format = openai.New("https://api.openai.test/v1")
	pAnthropic Format = anthropic.New("https://api.anthropic.test/v1")
	pGoogle    Format = google.New("https://generativelanguage.test/v1beta")
	pAzure     Format = mustAzure()
)

func mustAzure() Format {
	p, err := azure.New("https://{resource}.openai.azure.test/openai/deployments/{deployment}")
	if err != nil {
		panic(err)
	}
	return p
}

// testProviders are the names a scope may list in validation tests.
var testProviders = []string{"openai", "anthropic", "google", "azure"}
