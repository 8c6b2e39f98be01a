package proxy

import "testing"

func TestStripKeyParam(t *testing.T) {
	for in, want := range map[string]string{
		"":                            "",
		"alt=sse&key=sk-caller&x=1":   "alt=sse&x=1",
		"key=sk-caller":               "",
		"monkey=1&key=a&key=b&keys=2": "monkey=1&keys=2",
		"api-version=2024-10-21":      "api-version=2024-10-21",
	} {
		if got := stripKeyParam(in); got != want {
			t.Errorf("stripKeyParam(%q) = %q, want %q", in, got, want)
		}
	}
}
