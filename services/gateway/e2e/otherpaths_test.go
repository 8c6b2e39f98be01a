package e2e

import (
	"context"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"google.golang.org/genai"
)

// TestOtherPaths: embeddings, model listing and the Responses API go through
// unchanged with the official clients, and embeddings are metered.
func TestOtherPaths(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ts := s.setupTenant("paths-" + randHex(3))
	ctx := context.Background()

	oc := openai.NewClient(option.WithBaseURL(s.gatewayURL+"/trueportai-services/openai/v1/"), option.WithAPIKey(ts.apiKey), option.WithMaxRetries(0))
	emb, err := oc.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"alpha", "beta"}},
	})
	if err != nil || len(emb.Data) != 2 || len(emb.Data[0].Embedding) == 0 || emb.Usage.PromptTokens == 0 {
		t.Fatalf("embeddings: %v %+v", err, emb)
	}
	models, err := oc.Models.List(ctx)
	if err != nil || len(models.Data) == 0 {
		t.Fatalf("openai models: %v", err)
	}
	resp, err := oc.Responses.New(ctx, openaiResponseParams("Say hi"))
	if err != nil || resp.OutputText() == "" || resp.Usage.TotalTokens == 0 {
		t.Fatalf("responses: %v", err)
	}

	ac := anthropic.NewClient(anthropicopt.WithBaseURL(s.gatewayURL+"/trueportai-services/anthropic/"), anthropicopt.WithAPIKey(ts.apiKey), anthropicopt.WithMaxRetries(0))
	am, err := ac.Models.List(ctx, anthropic.ModelListParams{})
	if err != nil || len(am.Data) == 0 {
		t.Fatalf("anthropic models: %v", err)
	}

	gc, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: ts.apiKey, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: s.gatewayURL + "/trueportai-services/google/", APIVersion: "v1beta"}})
	if err != nil {
		t.Fatal(err)
	}
	ge, err := gc.Models.EmbedContent(ctx, "text-embedding-004", genai.Text("alpha"), nil)
	if err != nil || len(ge.Embeddings) == 0 {
		t.Fatalf("gemini embed: %v", err)
	}

	page := s.waitLogs(ts.scopedToken, 5)
	for _, r := range page.Items {
		if r.StatusCode != 200 {
			t.Errorf("row %+v", r)
		}
		if r.Model == "text-embedding-3-small" && (r.PromptTokens == nil || *r.PromptTokens != emb.Usage.PromptTokens) {
			t.Errorf("embedding usage %v, want %d", r.PromptTokens, emb.Usage.PromptTokens)
		}
	}
}
