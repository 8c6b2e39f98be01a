package fakeprovider

import (
	"strings"
	"unicode/utf8"
)

// loremIpsum is the sentence every fake completion is made of.
const loremIpsum = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, " +
	"sed do eiusmod tempor incididunt ut labore et dolore magna aliqua."

// reply is a generated completion, split into the pieces a stream sends.
type reply struct {
	pieces    []string // stream chunks; their concatenation is text
	text      string   // the full completion
	tokens    int      // completion tokens: one per word
	truncated bool     // cut short by the request's output token limit
}

// newReply builds the completion for a stream of chunks pieces. The sentence
// is repeated until there is at least one word per chunk, then cut to
// maxTokens words when maxTokens is positive and smaller.
func newReply(chunks, maxTokens int) reply {
	chunks = max(chunks, 1)
	words := loremWords(chunks)
	truncated := false
	if maxTokens > 0 && maxTokens < len(words) {
		words = words[:maxTokens]
		truncated = true
	}
	pieces := splitWords(words, min(chunks, len(words)))
	return reply{
		pieces:    pieces,
		text:      strings.Join(pieces, ""),
		tokens:    len(words),
		truncated: truncated,
	}
}

// loremWords returns the words of loremIpsum repeated to at least n words.
func loremWords(n int) []string {
	base := strings.Fields(loremIpsum)
	repeat := (n + len(base) - 1) / len(base)
	words := make([]string, 0, max(repeat, 1)*len(base))
	for range max(repeat, 1) {
		words = append(words, base...)
	}
	return words
}

// splitWords spreads words evenly over n pieces; every piece after the first
// starts with the separating space, so the pieces concatenate to the text.
func splitWords(words []string, n int) []string {
	pieces := make([]string, n)
	for i := range n {
		lo, hi := i*len(words)/n, (i+1)*len(words)/n
		p := strings.Join(words[lo:hi], " ")
		if i > 0 {
			p = " " + p
		}
		pieces[i] = p
	}
	return pieces
}

// promptTokens approximates the token count of the text found in values
// (decoded JSON): ceil(chars/4), at least 1.
func promptTokens(values ...any) int {
	chars := 0
	for _, v := range values {
		chars += textChars(v)
	}
	return tokensForChars(chars)
}

// tokensForChars returns ceil(chars/4), at least 1.
func tokensForChars(chars int) int {
	return max(1, (chars+3)/4)
}

// textChars counts the characters of the prompt text in a decoded JSON value.
func textChars(v any) int {
	n := 0
	walkText(v, func(s string) { n += utf8.RuneCountInString(s) })
	return n
}

// walkText calls visit for every piece of prompt text in a decoded JSON
// value: strings, elements of arrays, and the text, content and parts fields
// of objects. That covers OpenAI and Anthropic messages and content blocks,
// Responses input items and Gemini contents and parts, while skipping
// metadata such as model names and roles.
func walkText(v any, visit func(string)) {
	switch t := v.(type) {
	case string:
		visit(t)
	case []any:
		for _, e := range t {
			walkText(e, visit)
		}
	case map[string]any:
		for _, k := range [...]string{"text", "content", "parts"} {
			walkText(t[k], visit)
		}
	}
}
