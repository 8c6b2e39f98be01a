package azure

import (
	"errors"
	"net/http"
	"strings"

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

// TestDeploymentIsTheModel: the deployment in the path runs, so it (or the
// model the tenant maps it to) is the model for allowlists, pricing and
// usage; the body's "model" is ignored.
func TestDeploymentIsTheModel(t *testing.T) {
	p := newTest(t)
	tg, err := p.Route("res/gpt4o-prod/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Inspect(&tg, provider.Credential{}, []byte(`{"messages":[]}`)); r.Model != "gpt4o-prod" {
		t.Fatalf("model %q", r.Model)
	}
	if r := p.Inspect(&tg, provider.Credential{}, []byte(`{"model":"gpt-4o-mini","messages":[],"stream":true}`)); r.Model != "gpt4o-prod" || !r.Stream {
		t.Fatalf("the body's model was believed: %+v", r)
	}
	mapped := provider.Credential{Deployments: map[string]string{"gpt4o-prod": "gpt-4o"}}
	if r := p.Inspect(&tg, mapped, []byte(`{"model":"gpt-4o-mini"}`)); r.Model != "gpt-4o" {
		t.Fatalf("mapped deployment: %+v", r)
	}
	u, _, err := p.URL(&tg, provider.Credential{BaseURL: "https://evil.test"}, "api-version=1")
	if err != nil || u != "https://res.openai.azure.test/openai/deployments/gpt4o-prod/chat/completions?api-version=1" {
		t.Fatalf("URL %q %v (a tenant base URL must not redirect Azure)", u, err)
	}
}

// TestPinnedResources: with providers.azure.resources set, a call to another
// resource is refused before anything is sent.
func TestPinnedResources(t *testing.T) {
	p := newTest(t)
	tg, _ := p.Route("attacker-res/gpt4o/chat/completions")
	pinned := provider.Credential{APIKey: "k", Resources: []string{"acme-prod", "acme-dev"}}
	_, _, err := p.URL(&tg, pinned, "")
	var ref *provider.Refusal
	if !errors.As(err, &ref) || ref.Status != http.StatusForbidden || ref.Code != "resource_not_allowed" {
		t.Fatalf("unpinned resource: %v", err)
	}
	tg, _ = p.Route("acme-prod/gpt4o/chat/completions")
	if u, tenant, err := p.URL(&tg, pinned, ""); err != nil || tenant || !strings.HasPrefix(u, "https://acme-prod.openai.azure.test/") {
		t.Fatalf("pinned resource: %q %v %v", u, tenant, err)
	}
	if _, _, err := p.URL(&tg, provider.Credential{APIKey: "k"}, ""); err != nil {
		t.Fatal("no pins: any resource")
	}
}
