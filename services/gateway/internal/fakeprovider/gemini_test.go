package fakeprovider

import (
	"net/http"
	"strings"
	"testing"
)

// geminiBody has 8 characters of system instruction and 8 of contents: 4 tokens.
const geminiBody = `{"systemInstruction":{"parts":[{"text":"Be brief"}]},` +
	`"contents":[{"role":"user","parts":[{"text":"Hi there"}]}]`

// geminiPath is the model call path for method.
func geminiPath(method string) string {
	return "/google/v1beta/models/gemini-2.0-flash:" + method
}

func TestGeminiGenerateContent(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp, b := do(t, srv, request{path: geminiPath("generateContent"), body: geminiBody + "}", headers: []map[string]string{geminiAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	r := decode[geminiResponse](t, b)
	if len(r.Candidates) != 1 || r.ModelVersion != "gemini-2.0-flash" || r.ResponseID == "" {
		t.Fatalf("unexpected response %s", b)
	}
	c := r.Candidates[0]
	if c.Content.Role != "model" || len(c.Content.Parts) != 1 || c.Content.Parts[0].Text != loremIpsum || c.FinishReason != "STOP" {
		t.Fatalf("unexpected candidate %s", b)
	}
	u := r.UsageMetadata
	if u.PromptTokenCount != 4 || u.CandidatesTokenCount != 19 || u.TotalTokenCount != 23 {
		t.Fatalf("unexpected usage %s", b)
	}
}

func TestGeminiStreamSSE(t *testing.T) {
	srv := newTestServer(t, Config{Chunks: 3})
	resp, b := do(t, srv, request{path: geminiPath("streamGenerateContent") + "?alt=sse", body: geminiBody + "}", headers: []map[string]string{geminiAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	wantHeader(t, resp, "Content-Type", "text/event-stream")
	if !strings.HasSuffix(string(b), "}\r\n\r\n") || strings.Count(string(b), "\r\n\r\n") != 3 {
		t.Fatalf("events are not terminated by \\r\\n\\r\\n: %q", b)
	}
	events := parseSSE(t, b)
	chunks := make([]geminiResponse, len(events))
	for i, ev := range events {
		chunks[i] = decode[geminiResponse](t, []byte(ev.data))
	}
	checkGeminiChunks(t, chunks, 3)
}

func TestGeminiStreamJSONArray(t *testing.T) {
	srv := newTestServer(t, Config{Chunks: 2})
	resp, b := do(t, srv, request{path: geminiPath("streamGenerateContent"), body: geminiBody + "}", headers: []map[string]string{geminiAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	wantHeader(t, resp, "Content-Type", "application/json")
	checkGeminiChunks(t, decode[[]geminiResponse](t, b), 2)
}

// checkGeminiChunks verifies a streamed generation: n chunks whose text is
// the JSON text, usage on each chunk and complete on the last.
func checkGeminiChunks(t *testing.T, chunks []geminiResponse, n int) {
	t.Helper()
	if len(chunks) != n {
		t.Fatalf("chunks = %d, want %d", len(chunks), n)
	}
	var text strings.Builder
	for i, c := range chunks {
		text.WriteString(c.Candidates[0].Content.Parts[0].Text)
		last := i == n-1
		if (c.Candidates[0].FinishReason == "STOP") != last {
			t.Fatalf("chunk %d: finishReason %q", i, c.Candidates[0].FinishReason)
		}
		if c.UsageMetadata.PromptTokenCount != 4 {
			t.Fatalf("chunk %d: promptTokenCount %d, want 4", i, c.UsageMetadata.PromptTokenCount)
		}
		if c.ModelVersion != "gemini-2.0-flash" || c.ResponseID != chunks[0].ResponseID {
			t.Fatalf("chunk %d: model %q id %q", i, c.ModelVersion, c.ResponseID)
		}
	}
	u := chunks[n-1].UsageMetadata
	if u.CandidatesTokenCount != 19 || u.TotalTokenCount != 23 {
		t.Fatalf("final usage = %+v, want 19 candidates, 23 total", u)
	}
	if text.String() != loremIpsum {
		t.Fatalf("streamed text %q != JSON text", text.String())
	}
}

func TestGeminiCountTokensMatchesGenerate(t *testing.T) {
	srv := newTestServer(t, Config{})
	for _, body := range []string{geminiBody + "}", `{"generateContentRequest":` + geminiBody + `}}`} {
		resp, b := do(t, srv, request{path: geminiPath("countTokens"), body: body, headers: []map[string]string{geminiAuth()}})
		wantStatus(t, resp, b, http.StatusOK)
		if got := decode[map[string]any](t, b)["totalTokens"]; got != float64(4) {
			t.Fatalf("body %s: totalTokens = %v, want 4", body, got)
		}
	}
}

func TestGeminiEmbeddings(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp, b := do(t, srv, request{
		path:    "/google/v1beta/models/text-embedding-004:embedContent?key=k",
		body:    `{"content":{"parts":[{"text":"hello"}]}}`,
		headers: nil,
	})
	wantStatus(t, resp, b, http.StatusOK)
	single := decode[struct {
		Embedding struct {
			Values []float32 `json:"values"`
		} `json:"embedding"`
	}](t, b)
	if len(single.Embedding.Values) != 768 {
		t.Fatalf("values = %d, want 768", len(single.Embedding.Values))
	}
	resp, b = do(t, srv, request{
		path: "/google/v1beta/models/gemini-embedding-001:batchEmbedContents",
		body: `{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]},"outputDimensionality":16},` +
			`{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"b"}]}}]}`,
		headers: []map[string]string{geminiAuth()},
	})
	wantStatus(t, resp, b, http.StatusOK)
	batch := decode[struct {
		Embeddings []struct {
			Values []float32 `json:"values"`
		} `json:"embeddings"`
	}](t, b)
	if len(batch.Embeddings) != 2 || len(batch.Embeddings[0].Values) != 16 || len(batch.Embeddings[1].Values) != 3072 {
		t.Fatalf("unexpected batch %d embeddings", len(batch.Embeddings))
	}
}

func TestGeminiModels(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp, b := do(t, srv, request{method: http.MethodGet, path: "/google/v1beta/models", headers: []map[string]string{geminiAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	list := decode[struct {
		Models []geminiModelInfo `json:"models"`
	}](t, b)
	if len(list.Models) == 0 || !strings.HasPrefix(list.Models[0].Name, "models/") {
		t.Fatalf("unexpected model list %s", b)
	}
	resp, b = do(t, srv, request{method: http.MethodGet, path: "/google/v1beta/models/gemini-x", headers: []map[string]string{geminiAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	if m := decode[geminiModelInfo](t, b); m.Name != "models/gemini-x" {
		t.Fatalf("unexpected model %s", b)
	}
}

func TestGeminiErrors(t *testing.T) {
	srv := newTestServer(t, Config{})
	tests := []struct {
		name   string
		path   string
		h      map[string]string
		status int
		code   string
	}{
		{"no key", geminiPath("generateContent"), nil, http.StatusUnauthorized, "UNAUTHENTICATED"},
		{"unknown method", geminiPath("fly"), geminiAuth(), http.StatusNotFound, "NOT_FOUND"},
		{"no method", "/google/v1beta/models/gemini-2.0-flash", geminiAuth(), http.StatusNotFound, "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := do(t, srv, request{path: tt.path, body: geminiBody + "}", headers: []map[string]string{tt.h}})
			wantStatus(t, resp, b, tt.status)
			e := decode[geminiErrorBody](t, b)
			if e.Error.Code != tt.status || e.Error.Status != tt.code || e.Error.Message == "" {
				t.Fatalf("unexpected error body %s", b)
			}
		})
	}
	resp, b := do(t, srv, request{path: geminiPath("generateContent"), body: `{}`, headers: []map[string]string{geminiAuth()}})
	wantStatus(t, resp, b, http.StatusBadRequest)
	if e := decode[geminiErrorBody](t, b); e.Error.Status != "INVALID_ARGUMENT" {
		t.Fatalf("unexpected error body %s", b)
	}
}
