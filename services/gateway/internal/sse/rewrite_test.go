package sse

import (
	"strings"
	"testing"
)

func TestReplaceData(t *testing.T) {
	for _, tc := range []struct{ raw, data, want string }{
		{"data: {\"a\":1}\n\n", `{"a":2}`, "data: {\"a\":2}\n\n"},
		{"event: x\r\nid: 7\r\ndata: 1\r\ndata: 2\r\n\r\n", "3", "event: x\r\nid: 7\r\ndata: 3\n\r\n"},
		{"event: x\ndata: 1\n\n", "{\n\"a\": 1}", "event: x\ndata: {\ndata: \"a\": 1}\n\n"},
		{"event: x\n\n", "1", "event: x\ndata: 1\n\n"},
		{"data: tail", "t", "data: t\n"},
	} {
		got := string(ReplaceData(nil, []byte(tc.raw), []byte(tc.data)))
		if got != tc.want {
			t.Errorf("ReplaceData(%q, %q) = %q, want %q", tc.raw, tc.data, got, tc.want)
		}
		// What a client reads back is the new data.
		evs, _ := readAll(t, strings.NewReader(got+"\n"))
		if len(evs) == 0 || evs[0].data != tc.data {
			t.Errorf("reframed %q reads back as %+v", got, evs)
		}
	}
}
