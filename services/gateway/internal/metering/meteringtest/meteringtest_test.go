package meteringtest

import (
	"bytes"
	"testing"
)

func TestParseSSE(t *testing.T) {
	in := "event: a\r\ndata: 1\r\ndata:2\r\n\r\n: comment\n\nid: 7\nevent: b\ndata\n\nretry: 10\n\ndata: tail"
	got := ParseSSE([]byte(in))
	want := []Event{{"a", []byte("1\n2")}, {"b", []byte("")}}
	if len(got) != len(want) {
		t.Fatalf("got %d events: %q", len(got), got)
	}
	for i := range want {
		if got[i].Name != want[i].Name || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Errorf("event %d = %q/%q, want %q/%q", i, got[i].Name, got[i].Data, want[i].Name, want[i].Data)
		}
	}
}
