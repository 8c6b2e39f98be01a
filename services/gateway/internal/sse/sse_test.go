package sse

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

type ev struct{ raw, name, data string }

func readAll(t *testing.T, r io.Reader) ([]ev, error) {
	t.Helper()
	f := Framing{}.Framer(r)
	defer f.Release()
	var out []ev
	for {
		raw, name, data, err := f.Next()
		if err != nil {
			if len(raw) > 0 {
				out = append(out, ev{string(raw), string(name), string(data)})
			}
			return out, err
		}
		out = append(out, ev{string(raw), string(name), string(data)})
	}
}

func TestFramer(t *testing.T) {
	in := "event: a\r\ndata: 1\r\ndata:2\r\n\r\n: comment\n\ndata: {\"x\":1}\n\ndata: tail"
	for name, r := range map[string]io.Reader{"whole": strings.NewReader(in), "byte by byte": iotest.OneByteReader(strings.NewReader(in))} {
		got, err := readAll(t, r)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("%s: err %v", name, err)
		}
		want := []ev{
			{"event: a\r\ndata: 1\r\ndata:2\r\n\r\n", "a", "1\n2"},
			{": comment\n\n", "", ""},
			{"data: {\"x\":1}\n\n", "", `{"x":1}`},
			{"data: tail", "", "tail"}, // unterminated: returned with the error
		}
		if len(got) != len(want) {
			t.Fatalf("%s: got %q", name, got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: event %d = %q, want %q", name, i, got[i], want[i])
			}
		}
	}
}

func TestFramerEventTooLarge(t *testing.T) {
	in := "data: " + strings.Repeat("x", MaxEventBytes+10) + "\n\n"
	got, err := readAll(t, strings.NewReader(in))
	if !errors.Is(err, ErrEventTooLarge) || len(got) != 0 {
		t.Fatalf("got %d events, err %v", len(got), err)
	}
}

func TestBuffered(t *testing.T) {
	f := Framing{}.Framer(strings.NewReader("data: 1\n\ndata: 2\n\ndata: 3"))
	defer f.Release()
	if _, _, _, err := f.Next(); err != nil {
		t.Fatal(err)
	}
	if !f.Buffered() {
		t.Fatal("a complete second event is buffered")
	}
	if _, _, _, err := f.Next(); err != nil {
		t.Fatal(err)
	}
	if f.Buffered() {
		t.Fatal("the third event is incomplete")
	}
}

func TestFor(t *testing.T) {
	if For("text/event-stream; charset=utf-8") == nil || For("application/json") != nil || For("") != nil {
		t.Fatal("For")
	}
}
