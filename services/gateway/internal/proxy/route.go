package proxy

import (
	"net/url"
	"strings"
)

// stripKeyParam removes the caller's ?key= (Gemini style) from a raw query,
// keeping every other parameter as sent.
func stripKeyParam(raw string) string {
	if raw == "" || (!strings.Contains(raw, "key") && !strings.Contains(raw, "%")) {
		return raw
	}
	parts := strings.Split(raw, "&")
	kept := parts[:0]
	for _, p := range parts {
		if isKeyParam(p) {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}

// isKeyParam reports whether a raw query parameter is the caller's key:
// its name, decoded once (as url.Query decodes it: "ke%79" is "key"), is
// "key".
func isKeyParam(p string) bool {
	name, _, _ := strings.Cut(p, "=")
	if name == "key" {
		return true
	}
	if !strings.ContainsAny(name, "%+") {
		return false
	}
	dec, err := url.QueryUnescape(name)
	return err == nil && dec == "key"
}
