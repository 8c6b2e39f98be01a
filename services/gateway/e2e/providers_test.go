package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/azure"
	"github.com/openai/openai-go/v3/option"
	"google.golang.org/genai"
)

// TestProviderSDKs drives Anthropic, Gemini and Azure through their official
// clients with only the base URL changed, JSON and streamed, and checks the
// metered usage of each call.
func TestProviderSDKs(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ts := s.setupTenant("sdks-" + randHex(3))
	ctx := context.Background()
	type want struct {
		provider, model string
		stream          bool
		prompt, compl   int64
	}
	var wants []want

	// Anthropic.
	ac := anthropic.NewClient(
		anthropicopt.WithBaseURL(s.gatewayURL+"/trueportai-services/anthropic/"),
		anthropicopt.WithAPIKey(ts.apiKey),
		anthropicopt.WithMaxRetries(0),
	)
	aParams := anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 256,
		System:    []anthropic.TextBlockParam{{Text: "Be brief."}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hello through the gateway"))},
	}
	msg, err := ac.Messages.New(ctx, aParams)
	if err != nil {
		t.Fatalf("anthropic messages: %v", err)
	}
	if len(msg.Content) == 0 || msg.Content[0].Text == "" || msg.Usage.OutputTokens == 0 {
		t.Fatalf("anthropic answer: %+v", msg)
	}
	wants = append(wants, want{"anthropic", "claude-sonnet-4-5", false, msg.Usage.InputTokens, msg.Usage.OutputTokens})
	st := ac.Messages.NewStreaming(ctx, aParams)
	acc := anthropic.Message{}
	for st.Next() {
		if err := acc.Accumulate(st.Current()); err != nil {
			t.Fatalf("accumulate: %v", err)
		}
	}
	if err := st.Err(); err != nil {
		t.Fatalf("anthropic stream: %v", err)
	}
	if acc.Content[0].Text != msg.Content[0].Text || acc.Usage.OutputTokens != msg.Usage.OutputTokens {
		t.Fatalf("anthropic stream %q/%d != JSON %q/%d", acc.Content[0].Text, acc.Usage.OutputTokens, msg.Content[0].Text, msg.Usage.OutputTokens)
	}
	wants = append(wants, want{"anthropic", "claude-sonnet-4-5", true, msg.Usage.InputTokens, msg.Usage.OutputTokens})

	// Gemini.
	gc, err := genai.NewClient(ctx, &genai.ClientConfig{
		APIKey: ts.apiKey, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: s.gatewayURL + "/trueportai-services/google/", APIVersion: "v1beta"},
	})
	if err != nil {
		t.Fatal(err)
	}
	gr, err := gc.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("Hello through the gateway"), nil)
	if err != nil {
		t.Fatalf("gemini generate: %v", err)
	}
	if gr.Text() == "" || gr.UsageMetadata == nil {
		t.Fatalf("gemini answer: %+v", gr)
	}
	wants = append(wants, want{"google", "gemini-2.5-flash", false, int64(gr.UsageMetadata.PromptTokenCount), int64(gr.UsageMetadata.CandidatesTokenCount)})
	var gtext strings.Builder
	for chunk, err := range gc.Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("Hello through the gateway"), nil) {
		if err != nil {
			t.Fatalf("gemini stream: %v", err)
		}
		gtext.WriteString(chunk.Text())
	}
	if gtext.String() != gr.Text() {
		t.Fatalf("gemini stream %q != JSON %q", gtext.String(), gr.Text())
	}
	wants = append(wants, want{"google", "gemini-2.5-flash", true, int64(gr.UsageMetadata.PromptTokenCount), int64(gr.UsageMetadata.CandidatesTokenCount)})

	// Azure OpenAI through openai-go's Azure options (endpoint changed only).
	az := openai.NewClient(
		azure.WithEndpoint(s.gatewayURL+"/trueportai-services/azure/myresource", "2024-10-21"),
		azure.WithAPIKey(ts.apiKey),
		azure.WithUnsafeAllowHTTP(),
		option.WithMaxRetries(0),
	)
	params := openai.ChatCompletionNewParams{Model: "gpt-4o-deploy", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello Azure")}}
	comp, err := az.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatalf("azure chat: %v", err)
	}
	wants = append(wants, want{"azure", "gpt-4o-deploy", false, comp.Usage.PromptTokens, comp.Usage.CompletionTokens})
	azs := az.Chat.Completions.NewStreaming(ctx, params)
	for azs.Next() {
		if len(azs.Current().Choices) == 0 {
			t.Fatal("azure client saw the hidden usage chunk")
		}
	}
	if err := azs.Err(); err != nil {
		t.Fatalf("azure stream: %v", err)
	}
	wants = append(wants, want{"azure", "gpt-4o-deploy", true, comp.Usage.PromptTokens, comp.Usage.CompletionTokens})

	// Credentials injected per provider; the caller key never forwarded.
	for _, h := range s.upstream.headers() {
		for name, vals := range h {
			for _, v := range vals {
				if strings.Contains(v, ts.apiKey) {
					t.Fatalf("caller key leaked upstream in %s", name)
				}
			}
		}
		if h.Get("X-Api-Key") == "" && h.Get("X-Goog-Api-Key") == "" && h.Get("Api-Key") == "" && h.Get("Authorization") == "" {
			t.Fatalf("no credential injected: %v", h)
		}
	}

	page := s.waitLogs(ts.scopedToken, len(wants))
	for _, w := range wants {
		found := false
		for _, r := range page.Items {
			if r.Provider == w.provider && r.Stream == w.stream && r.Model == w.model {
				found = true
				if r.PromptTokens == nil || r.CompletionTokens == nil || *r.PromptTokens != w.prompt || *r.CompletionTokens != w.compl || r.StatusCode != http.StatusOK {
					t.Errorf("%s stream=%v: row tokens %v/%v status %d, want %d/%d", w.provider, w.stream, r.PromptTokens, r.CompletionTokens, r.StatusCode, w.prompt, w.compl)
				}
			}
		}
		if !found {
			t.Errorf("no log row for %+v", w)
		}
	}
}
