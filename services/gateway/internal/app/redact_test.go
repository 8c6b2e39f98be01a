package app

import (
	"strings"
	"testing"

	"trueportai/services/gateway/internal/policy"
	"trueportai/services/gateway/internal/provider/openai"
)

func TestBodyRedactor(t *testing.T) {
	redact, err := newBodyRedactor()
	if err != nil {
		t.Fatal(err)
	}
	req := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"card 4242 4242 4242 4242, mail jane@corp.example"}]}`
	out := string(redact(openai.New(""), policy.DirectionRequest, []byte(req)))
	if strings.Contains(out, "4242 4242 4242 4242") || strings.Contains(out, "jane@corp.example") || !strings.Contains(out, `"model":"gpt-4o-mini"`) {
		t.Fatalf("request body: %s", out)
	}
	sse := "data: {\"choices\":[{\"delta\":{\"content\":\"key AKIAZ7QW3RTY5UIOP2LK\"}}]}\n\n"
	out = string(redact(openai.New(""), policy.DirectionResponse, []byte(sse)))
	if strings.Contains(out, "AKIAZ7QW3RTY5UIOP2LK") {
		t.Fatalf("stream body: %s", out)
	}
}
