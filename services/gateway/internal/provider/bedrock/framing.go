package bedrock

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"trueportai/services/gateway/internal/provider"
)

// maxMessageBytes bounds one event-stream message (AWS allows 16 MiB of
// payload and 128 KiB of headers).
const maxMessageBytes = 16<<20 + 128<<10 + 16

// errBadFrame is returned for a message whose length cannot be right.
var errBadFrame = errors.New("event-stream message length out of range")

// Framing is chosen for application/vnd.amazon.eventstream responses.
func (*Provider) Framing(contentType string) provider.Framing {
	if strings.HasPrefix(contentType, "application/vnd.amazon.eventstream") {
		return eventStream{}
	}
	return nil
}

// eventStream is AWS's binary event-stream framing: length-prefixed
// messages with typed headers and CRC32 checksums.
type eventStream struct{}

var framers = sync.Pool{New: func() any {
	return &framer{br: bufio.NewReaderSize(nil, 32*1024), dec: eventstream.NewDecoder()}
}}

func (eventStream) Framer(r io.Reader) provider.Framer {
	f := framers.Get().(*framer)
	f.br.Reset(r)
	return f
}

type framer struct {
	br      *bufio.Reader
	dec     *eventstream.Decoder
	raw     bytes.Buffer
	payload []byte
	name    []byte
}

// Next reads one whole message; raw is its bytes as received, name its
// :event-type (:exception-type for exceptions, :error-code for errors), data
// its payload. The decoder checks both CRCs.
func (f *framer) Next() (raw, name, data []byte, err error) {
	f.raw.Reset()
	prelude, err := f.br.Peek(4)
	if err != nil {
		n, _ := f.raw.ReadFrom(io.LimitReader(f.br, 4))
		if n > 0 {
			return f.raw.Bytes(), nil, nil, io.ErrUnexpectedEOF
		}
		return nil, nil, nil, err
	}
	total := binary.BigEndian.Uint32(prelude)
	if total < 16 || total > maxMessageBytes {
		return nil, nil, nil, errBadFrame
	}
	f.raw.Grow(int(total))
	if n, err := f.raw.ReadFrom(io.LimitReader(f.br, int64(total))); err != nil || n < int64(total) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return f.raw.Bytes(), nil, nil, err
	}
	msg, err := f.dec.Decode(bytes.NewReader(f.raw.Bytes()), f.payload[:0])
	if err != nil {
		return nil, nil, nil, err
	}
	f.payload = msg.Payload
	f.name = f.name[:0]
	header := ":event-type"
	switch headerString(msg.Headers, ":message-type") {
	case "exception":
		header = ":exception-type"
	case "error":
		header = ":error-code"
	}
	f.name = append(f.name, headerString(msg.Headers, header)...)
	return f.raw.Bytes(), f.name, msg.Payload, nil
}

func headerString(h eventstream.Headers, name string) string {
	if v, ok := h.Get(name).(eventstream.StringValue); ok {
		return string(v)
	}
	return ""
}

// Buffered reports whether a whole next message has already arrived.
func (f *framer) Buffered() bool {
	n := f.br.Buffered()
	if n < 4 {
		return false
	}
	p, _ := f.br.Peek(4)
	return n >= int(binary.BigEndian.Uint32(p))
}

// Release returns the framer to its pool (large buffers are dropped).
func (f *framer) Release() {
	f.br.Reset(nil)
	if f.raw.Cap() > 1<<20 || cap(f.payload) > 1<<20 {
		return
	}
	framers.Put(f)
}
