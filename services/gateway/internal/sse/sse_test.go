package sse

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unsafe"
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

// referenceEvents splits a whole stream as Next's line-by-line path does,
// for FuzzFramer: events through their blank line, then what is left. Data
// lines are joined by '\n' after the first non-empty text (an empty first
// data: line adds nothing), as Next always did.
func referenceEvents(in string) []ev {
	var out []ev
	var cur ev
	flush := func() {
		out = append(out, cur)
		cur = ev{}
	}
	for len(in) > 0 {
		line := in
		if i := strings.IndexByte(in, '\n'); i >= 0 {
			line = in[:i+1]
		}
		in = in[len(line):]
		cur.raw += line
		content := strings.TrimRight(line, "\r\n")
		switch {
		case content == "":
			flush()
			continue
		case strings.HasPrefix(content, "data:"):
			if cur.data != "" {
				cur.data += "\n"
			}
			cur.data += strings.TrimPrefix(content[len("data:"):], " ")
		case strings.HasPrefix(content, "event:"):
			cur.name = strings.TrimSpace(content[len("event:"):])
		}
	}
	if cur.raw != "" {
		flush()
	}
	return out
}

// chunkReader returns at most n bytes a read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(b []byte) (int, error) { return c.r.Read(b[:min(len(b), c.n)]) }

// FuzzFramer: whatever the reads' sizes (events whole in the read buffer,
// or split across reads, or longer than it), Next frames as the reference.
func FuzzFramer(f *testing.F) {
	for _, s := range []string{
		"event: a\r\ndata: 1\r\ndata:2\r\n\r\n: comment\n\ndata: {\"x\":1}\n\ndata: tail",
		"data: 1\n\ndata: 2\n\nevent: x\nevent:  y \ndata:\n\n\n\nid: 3\nretry: 1\ndata:  two spaces\r\r\n\r\n",
		"data: " + strings.Repeat("x", 5000) + "\n\ndata: a\ndata: b\n\n",
	} {
		f.Add(s, uint16(0))
		f.Add(s, uint16(7))
	}
	f.Fuzz(func(t *testing.T, in string, chunk uint16) {
		var r io.Reader = strings.NewReader(in)
		if chunk > 0 {
			r = chunkReader{r, int(chunk)}
		}
		got, err := readAll(t, r)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("err %v", err)
		}
		want := referenceEvents(in)
		if len(got) != len(want) {
			t.Fatalf("%q in reads of %d: got %q, want %q", in, chunk, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%q in reads of %d: event %d = %q, want %q", in, chunk, i, got[i], want[i])
			}
		}
	})
}

// TestFramerWholeEventInPlace: an event that arrived whole, with one data
// line, is framed where it lies: its data is a part of its raw bytes, not
// a copy; one with two data lines is joined (a copy).
func TestFramerWholeEventInPlace(t *testing.T) {
	f := Framing{}.Framer(strings.NewReader("event: e\ndata: {\"a\":1}\n\ndata: 1\ndata: 2\n\n"))
	defer f.Release()
	within := func(s, in []byte) bool {
		return len(s) > 0 && len(in) > 0 && &in[0] == &in[:cap(in)][0] &&
			uintptr(unsafe.Pointer(&s[0])) >= uintptr(unsafe.Pointer(&in[0])) &&
			uintptr(unsafe.Pointer(&s[0])) < uintptr(unsafe.Pointer(&in[0]))+uintptr(len(in))
	}
	raw, name, data, err := f.Next()
	if err != nil || string(name) != "e" || string(data) != `{"a":1}` {
		t.Fatalf("got %q %q %q %v", raw, name, data, err)
	}
	if !within(data, raw) || !within(name, raw) {
		t.Fatal("the data and name of a whole event were copied out of its raw bytes")
	}
	raw, _, data, err = f.Next()
	if err != nil || string(data) != "1\n2" || within(data, raw) {
		t.Fatalf("got %q %q %v", raw, data, err)
	}
}
