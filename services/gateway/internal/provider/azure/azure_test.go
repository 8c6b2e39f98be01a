package azure

import (
	"testing"

	"trueportai/services/gateway/internal/metering"
	"trueportai/services/gateway/internal/metering/meteringtest"
	"trueportai/services/gateway/internal/provider"
)

func newTest(t testing.TB) *Provider {
	p, err := New("https://{resource}.openai.azure.test/openai/deployments/{deployment}")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGolden(t *testing.T)              { meteringtest.RunGolden(t, newTest(t), "testdata", 4) }
func TestStreamPrefixNotDone(t *testing.T) { meteringtest.RunPrefixNotDone(t, newTest(t), "testdata") }
func TestStreamEdgeCases(t *testing.T)     { meteringtest.RunStreamCases(t, newTest(t), streamCases) }

// TestOpenAIGoldens runs the OpenAI goldens through Azure: same wire format.
func TestOpenAIGoldens(t *testing.T) { meteringtest.RunGolden(t, newTest(t), "../openai/testdata", 15) }

var streamCases = []meteringtest.StreamCase{
	{
		Name: "responses failed unnamed",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"type":"response.failed","response":{"model":"gpt-4.1","status":"failed","error":{"code":"server_error","message":"x"},"usage":null}}`),
		},
		Want: metering.Usage{Model: "gpt-4.1"}, Done: true,
	},
}

func TestInspectFallsBackToDeployment(t *testing.T) {
	p := newTest(t)
	tg, err := p.Route("res/gpt4o-prod/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Inspect(&tg, []byte(`{"messages":[]}`)); r.Model != "gpt4o-prod" {
		t.Fatalf("model %q", r.Model)
	}
	if r := p.Inspect(&tg, []byte(`{"model":"gpt-4o","messages":[],"stream":true}`)); r.Model != "gpt-4o" || !r.Stream {
		t.Fatalf("%+v", r)
	}
	u, err := p.URL(&tg, provider.Credential{BaseURL: "https://evil.test"}, "api-version=1")
	if err != nil || u != "https://res.openai.azure.test/openai/deployments/gpt4o-prod/chat/completions?api-version=1" {
		t.Fatalf("URL %q %v (a tenant base URL must not redirect Azure)", u, err)
	}
}
