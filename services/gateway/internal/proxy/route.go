package proxy

import "strings"

// stripKeyParam removes the caller's ?key= (Gemini style) from a raw query,
// keeping every other parameter as sent.
func stripKeyParam(raw string) string {
	if raw == "" || !strings.Contains(raw, "key=") {
		return raw
	}
	parts := strings.Split(raw, "&")
	kept := parts[:0]
	for _, p := range parts {
		if name, _, _ := strings.Cut(p, "="); name == "key" {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}
