package fakeprovider

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// responsesBody has 8 characters of input and 8 of instructions: 4 tokens.
const responsesBody = `{"model":"gpt-4.1","instructions":"abcdefgh","input":[{"role":"user","content":[{"type":"input_text","text":"abcdefgh"}]}]`

// testResponse is the decoded shape of a Responses API response.
type testResponse struct {
	ID                string `json:"id"`
	Object            string `json:"object"`
	Status            string `json:"status"`
	Model             string `json:"model"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
	Output []struct {
		Type    string `json:"type"`
		Role    string `json:"role"`
		Status  string `json:"status"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	} `json:"output"`
	Usage *struct {
		InputTokens        int `json:"input_tokens"`
		OutputTokens       int `json:"output_tokens"`
		TotalTokens        int `json:"total_tokens"`
		InputTokensDetails *struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"input_tokens_details"`
		OutputTokensDetails *struct {
			ReasoningTokens int `json:"reasoning_tokens"`
		} `json:"output_tokens_details"`
	} `json:"usage"`
}

// testResponseEvent is the decoded shape of a Responses API stream event.
type testResponseEvent struct {
	Type           string        `json:"type"`
	SequenceNumber int           `json:"sequence_number"`
	Delta          string        `json:"delta"`
	Response       *testResponse `json:"response"`
}

func TestResponsesJSON(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp, b := do(t, srv, request{path: "/openai/v1/responses", body: responsesBody + "}", headers: []map[string]string{openAIAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	r := decode[testResponse](t, b)
	if !strings.HasPrefix(r.ID, "resp_") || r.Object != "response" || r.Status != "completed" || r.Model != "gpt-4.1" {
		t.Fatalf("unexpected response %s", b)
	}
	if len(r.Output) != 1 || r.Output[0].Type != "message" || r.Output[0].Content[0].Type != "output_text" ||
		r.Output[0].Content[0].Text != loremIpsum {
		t.Fatalf("unexpected output %s", b)
	}
	u := r.Usage
	if u == nil || u.InputTokens != 4 || u.OutputTokens != 19 || u.TotalTokens != 23 ||
		u.InputTokensDetails == nil || u.OutputTokensDetails == nil {
		t.Fatalf("unexpected usage %s", b)
	}
}

func TestResponsesStream(t *testing.T) {
	srv := newTestServer(t, Config{Chunks: 3})
	resp, b := do(t, srv, request{path: "/openai/v1/responses", body: responsesBody + `,"stream":true}`, headers: []map[string]string{openAIAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	events := parseSSE(t, b)
	var names []string
	var text strings.Builder
	var completed *testResponse
	for i, ev := range events {
		e := decode[testResponseEvent](t, []byte(ev.data))
		if e.Type != ev.name || e.SequenceNumber != i {
			t.Fatalf("event %d: name %q type %q seq %d", i, ev.name, e.Type, e.SequenceNumber)
		}
		names = append(names, ev.name)
		if e.Type == "response.output_text.delta" {
			text.WriteString(e.Delta)
		}
		if e.Type == "response.completed" {
			completed = e.Response
		}
	}
	want := []string{
		"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
		"response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("events = %v, want %v", names, want)
	}
	_, jb := do(t, srv, request{path: "/openai/v1/responses", body: responsesBody + "}", headers: []map[string]string{openAIAuth()}})
	full := decode[testResponse](t, jb)
	if text.String() != full.Output[0].Content[0].Text {
		t.Fatalf("streamed text %q != JSON text %q", text.String(), full.Output[0].Content[0].Text)
	}
	if completed == nil || completed.Usage == nil || *completed.Usage.InputTokensDetails != *full.Usage.InputTokensDetails ||
		completed.Usage.InputTokens != full.Usage.InputTokens || completed.Usage.OutputTokens != full.Usage.OutputTokens ||
		completed.Usage.TotalTokens != full.Usage.TotalTokens {
		t.Fatalf("completed usage differs from JSON usage")
	}
}

func TestResponsesIncomplete(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp, b := do(t, srv, request{path: "/openai/v1/responses", body: responsesBody + `,"max_output_tokens":2,"stream":true}`, headers: []map[string]string{openAIAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	events := parseSSE(t, b)
	last := decode[testResponseEvent](t, []byte(events[len(events)-1].data))
	if last.Type != "response.incomplete" || last.Response.Status != "incomplete" ||
		last.Response.IncompleteDetails == nil || last.Response.Usage.OutputTokens != 2 {
		t.Fatalf("unexpected last event %s", events[len(events)-1].data)
	}
}
