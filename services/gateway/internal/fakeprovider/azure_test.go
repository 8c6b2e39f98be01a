package fakeprovider

import (
	"net/http"
	"strings"
	"testing"
)

// azureBase is the deployment prefix used by the Azure tests.
const azureBase = "/azure/my-resource/openai/deployments/my-deployment"

func TestAzureChatJSONAndStream(t *testing.T) {
	srv := newTestServer(t, Config{})
	path := azureBase + "/chat/completions?api-version=2024-10-21"
	got := chatJSON(t, srv, path, chatBody, azureAuth())
	if got.Model != "my-deployment" || got.Choices[0].Message.Content != loremIpsum || got.Usage.PromptTokens != 7 {
		t.Fatalf("unexpected completion %+v", got)
	}
	events := chatStream(t, srv, path, chatBody, azureAuth())
	var text strings.Builder
	for _, ev := range events[:len(events)-1] {
		chunk := decode[testChatCompletion](t, []byte(ev.data))
		if chunk.Model != "my-deployment" {
			t.Fatalf("chunk model = %q", chunk.Model)
		}
		if c := chunk.Choices[0].Delta.Content; c != nil {
			text.WriteString(*c)
		}
	}
	if text.String() != loremIpsum {
		t.Fatalf("streamed text = %q", text.String())
	}
}

func TestAzureEmbeddings(t *testing.T) {
	srv := newTestServer(t, Config{})
	got := embeddingsCall(t, srv, azureBase+"/embeddings?api-version=2024-10-21", `{"input":"hello"}`, azureAuth())
	if got.Model != "my-deployment" || len(got.Data) != 1 || got.Usage.PromptTokens != 2 {
		t.Fatalf("unexpected embeddings %+v", got)
	}
}

func TestAzureErrors(t *testing.T) {
	srv := newTestServer(t, Config{})
	tests := []struct {
		name    string
		query   string
		headers map[string]string
		status  int
	}{
		{"missing api-key", "?api-version=2024-10-21", openAIAuth(), http.StatusUnauthorized},
		{"missing api-version", "", azureAuth(), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := do(t, srv, request{path: azureBase + "/chat/completions" + tt.query, body: chatBody + "}", headers: []map[string]string{tt.headers}})
			wantStatus(t, resp, b, tt.status)
			e := decode[azureErrorBody](t, b)
			if e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("unexpected error body %s", b)
			}
		})
	}
}
