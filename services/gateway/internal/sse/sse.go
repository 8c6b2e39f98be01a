// Package sse splits a server-sent-event stream into events, keeping each
// event's bytes exactly as received (the gateway forwards them untouched)
// next to its name and joined data payload (what metering reads).
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"

	"trueportai/services/gateway/internal/provider"
)

// MaxEventBytes bounds one event; a larger one ends the stream with
// ErrEventTooLarge.
const MaxEventBytes = 8 << 20

// ErrEventTooLarge is returned for an event over MaxEventBytes.
var ErrEventTooLarge = errors.New("sse event too large")

// Framing is the text/event-stream framing.
type Framing struct{}

// Keep-alives: what a proxy may write between two events of a stream that
// has been silent for a while, which a client's parser must ignore. Which
// one a provider's SDKs ignore is the provider's choice
// (provider.StreamKeepAlive).
var (
	// CommentKeepAlive is a comment line and the blank line that ends it:
	// the SSE specification has parsers ignore lines that begin with ':'.
	CommentKeepAlive = []byte(": keep-alive\n\n")
	// BlankKeepAlive is two empty lines (CRLF): an event with no data,
	// which parsers dispatch as nothing, for SDKs that treat any line
	// other than data: as an error (Google's).
	BlankKeepAlive = []byte("\r\n\r\n")
)

// readBufferSize is a framer's read buffer: a few events of the usual
// size (OpenAI-format chunks are 300–500 bytes), the size of net/http's
// own buffers below it. Every open stream holds one, so it is most of a
// stream's memory beyond net/http's; an event longer than the buffer is
// still read whole (readLine), into a buffer of its own.
const readBufferSize = 4 << 10

var framers = sync.Pool{New: func() any {
	return &Framer{br: bufio.NewReaderSize(nil, readBufferSize)}
}}

// Framer implements provider.Framing.
func (Framing) Framer(r io.Reader) provider.Framer {
	f := framers.Get().(*Framer)
	f.br.Reset(r)
	return f
}

// Framer reads one event at a time. It is not safe for concurrent use.
type Framer struct {
	br        *bufio.Reader
	raw, data bytes.Buffer
	name      []byte
}

// Next reads the next event: everything through its terminating blank line
// (raw), its event: field (name) and its data: lines joined by "\n" (data).
// The slices are valid until the next call. At the end of the stream it
// returns what was read of an unterminated event (possibly nothing) with the
// read error (io.EOF for a clean end).
func (f *Framer) Next() (raw, name, data []byte, err error) {
	if f.br.Buffered() == 0 {
		// Wait for the first bytes here, so that an event arriving whole
		// is framed in place.
		if _, err := f.br.Peek(1); err != nil {
			return nil, nil, nil, err
		}
	}
	if raw, name, data, ok := f.inBuffer(); ok {
		return raw, name, data, nil
	}
	f.raw.Reset()
	f.data.Reset()
	f.name = f.name[:0]
	for {
		line, err := readLine(f.br, MaxEventBytes-f.raw.Len())
		if len(line) > 0 {
			f.raw.Write(line)
			content := bytes.TrimRight(line, "\r\n")
			switch {
			case len(content) == 0:
				return f.raw.Bytes(), f.name, f.data.Bytes(), nil
			case bytes.HasPrefix(content, []byte("data:")):
				if f.data.Len() > 0 {
					f.data.WriteByte('\n')
				}
				f.data.Write(bytes.TrimPrefix(bytes.TrimPrefix(content, []byte("data:")), []byte(" ")))
			case bytes.HasPrefix(content, []byte("event:")):
				f.name = append(f.name[:0], bytes.TrimSpace(content[len("event:"):])...)
			}
		}
		if err != nil {
			if errors.Is(err, ErrEventTooLarge) {
				return nil, nil, nil, err
			}
			return f.raw.Bytes(), f.name, f.data.Bytes(), err
		}
	}
}

// inBuffer is Next for an event that has arrived whole in the read buffer
// with at most one data: line (the usual LLM stream chunk): it parses the
// event where it lies and returns slices of the read buffer, valid until
// the next read, so until the next call (Next copies each line twice
// otherwise). ok=false, nothing consumed, for anything else.
func (f *Framer) inBuffer() (raw, name, data []byte, ok bool) {
	buf, _ := f.br.Peek(f.br.Buffered())
	seenData := false
	for i := 0; i < len(buf); {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return nil, nil, nil, false // the event is not complete yet
		}
		// The line without its '\n' and the '\r's before it (Next's
		// TrimRight of "\r\n": no other '\n' precedes the first).
		content := buf[i : i+j]
		for len(content) > 0 && content[len(content)-1] == '\r' {
			content = content[:len(content)-1]
		}
		i += j + 1
		switch {
		case len(content) == 0:
			_, _ = f.br.Discard(i)
			return buf[:i], name, data, true
		case bytes.HasPrefix(content, []byte("data:")):
			if seenData {
				return nil, nil, nil, false // lines to join: Next copies them
			}
			seenData = true
			data = bytes.TrimPrefix(content[len("data:"):], []byte(" "))
		case bytes.HasPrefix(content, []byte("event:")):
			name = bytes.TrimSpace(content[len("event:"):])
		}
	}
	return nil, nil, nil, false
}

// Buffered reports whether a complete next event has already arrived, so
// events that arrived together can leave in one write.
func (f *Framer) Buffered() bool {
	n := f.br.Buffered()
	if n == 0 {
		return false
	}
	next, _ := f.br.Peek(n)
	return bytes.Contains(next, []byte("\n\n")) || bytes.Contains(next, []byte("\r\n\r\n"))
}

// Release returns the framer to its pool (large buffers are dropped).
func (f *Framer) Release() {
	f.br.Reset(nil)
	if f.raw.Cap() > 1<<20 || f.data.Cap() > 1<<20 {
		return
	}
	framers.Put(f)
}

// readLine reads through the next '\n' without a fixed line-length limit
// (beyond max, which bounds one event).
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	buf := append([]byte(nil), line...)
	for {
		if len(buf) > max {
			return buf, ErrEventTooLarge
		}
		line, err = br.ReadSlice('\n')
		buf = append(buf, line...)
		if err != bufio.ErrBufferFull {
			if len(buf) > max {
				return buf, ErrEventTooLarge
			}
			return buf, err
		}
	}
}

// For returns the SSE framing for a text/event-stream content type, nil
// for anything else.
func For(contentType string) provider.Framing {
	if len(contentType) >= len("text/event-stream") && contentType[:len("text/event-stream")] == "text/event-stream" {
		return Framing{}
	}
	return nil
}
