package fakeprovider

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestNewReplySplitsIntoChunks(t *testing.T) {
	words := len(strings.Fields(loremIpsum))
	for _, chunks := range []int{1, 2, 5, 19, 20, 57, 100} {
		rep := newReply(chunks, 0)
		if len(rep.pieces) != chunks {
			t.Errorf("chunks=%d: %d pieces", chunks, len(rep.pieces))
		}
		if got := strings.Join(rep.pieces, ""); got != rep.text {
			t.Errorf("chunks=%d: pieces join to %q, text is %q", chunks, got, rep.text)
		}
		for i, p := range rep.pieces {
			if strings.TrimSpace(p) == "" {
				t.Errorf("chunks=%d: piece %d is empty", chunks, i)
			}
		}
		if rep.tokens != len(strings.Fields(rep.text)) {
			t.Errorf("chunks=%d: tokens=%d, words=%d", chunks, rep.tokens, len(strings.Fields(rep.text)))
		}
		if rep.tokens < words || rep.tokens%words != 0 {
			t.Errorf("chunks=%d: tokens=%d is not whole sentences of %d words", chunks, rep.tokens, words)
		}
		if rep.truncated {
			t.Errorf("chunks=%d: truncated without a limit", chunks)
		}
	}
	if got := newReply(5, 0).text; got != loremIpsum {
		t.Errorf("text = %q, want the lorem sentence", got)
	}
}

func TestNewReplyTruncatesAtMaxTokens(t *testing.T) {
	rep := newReply(5, 3)
	if !rep.truncated || rep.tokens != 3 || rep.text != "Lorem ipsum dolor" {
		t.Fatalf("reply = %+v, want 3 words, truncated", rep)
	}
	if len(rep.pieces) != 3 {
		t.Fatalf("pieces = %q, want 3", rep.pieces)
	}
	if rep := newReply(5, 1000); rep.truncated {
		t.Fatalf("a limit above the length must not truncate")
	}
}

func TestPromptTokens(t *testing.T) {
	tests := []struct {
		name string
		json string
		want int
	}{
		{"string", `"abcdefgh"`, 2},
		{"rounds up", `"abcdefghi"`, 3},
		{"at least one", `""`, 1},
		{"runes not bytes", `"ééééé"`, 2},
		{"openai messages", `[{"role":"system","content":"abcd"},{"role":"user","content":"efgh"}]`, 2},
		{"content parts", `[{"role":"user","content":[{"type":"text","text":"abcdefgh"},{"type":"image_url","image_url":{"url":"x"}}]}]`, 2},
		{"gemini contents", `[{"role":"user","parts":[{"text":"abcd"},{"text":"efgh"}]}]`, 2},
		{"responses items", `[{"role":"user","content":[{"type":"input_text","text":"abcdefgh"}]}]`, 2},
		{"ignores metadata", `{"model":"gpt-4o-long-name","role":"assistant"}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tt.json), &v); err != nil {
				t.Fatal(err)
			}
			if got := promptTokens(v); got != tt.want {
				t.Errorf("promptTokens(%s) = %d, want %d", tt.json, got, tt.want)
			}
		})
	}
}

func TestEmbedVectorIsDeterministicUnitLength(t *testing.T) {
	a, b, c := embedVector("hello", 64), embedVector("hello", 64), embedVector("world", 64)
	norm := 0.0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("vectors for the same input differ at %d", i)
		}
		norm += float64(a[i]) * float64(a[i])
	}
	if norm < 0.999 || norm > 1.001 {
		t.Fatalf("squared norm = %f, want 1", norm)
	}
	if a[0] == c[0] && a[1] == c[1] {
		t.Fatalf("different inputs embed to the same vector")
	}
}
