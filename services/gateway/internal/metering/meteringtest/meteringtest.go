// Package meteringtest runs a provider's metering against golden files and
// checks the invariants every metered Usage must satisfy. It is imported by
// the provider packages' tests only.
//
// Golden cases live in a provider package's testdata directory: an input
// (name.json for a complete response body, name.sse for a server-sent event
// stream) next to name.golden, the expected result as JSON: model,
// prompt_tokens, completion_tokens, total_tokens, cached_tokens, known, and
// for streams done and events (the number of events with data).
package meteringtest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"trueportai/services/gateway/internal/metering"
)

// Meter is what a provider offers metering.
type Meter interface {
	MeterJSON(body []byte) metering.Usage
	NewStreamMeter(hideUsage bool) metering.StreamMeter
}

// Event is one dispatched server-sent event.
type Event struct {
	Name string
	Data []byte
}

// ParseSSE splits an SSE byte stream into events following the WHATWG
// event-stream rules (CRLF/LF/CR line endings, comments, one optional space
// after the colon, multi-line data joined by "\n"). An event not terminated
// by a blank line is dropped, as a browser would.
func ParseSSE(b []byte) []Event {
	var (
		events []Event
		name   string
		data   []byte
		inData bool
	)
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			break // unterminated line: incomplete event, dropped
		}
		line := b[:i]
		if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			b = b[i+2:]
		} else {
			b = b[i+1:]
		}
		if len(line) == 0 {
			if inData {
				events = append(events, Event{Name: name, Data: bytes.TrimSuffix(data, []byte("\n"))})
			}
			name, data, inData = "", nil, false
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if c := bytes.IndexByte(line, ':'); c >= 0 {
			field, value = line[:c], line[c+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			name = string(value)
		case "data":
			data = append(append(data, value...), '\n')
			inData = true
		}
	}
	return events
}

// Golden is the expected result stored next to each testdata input.
type Golden struct {
	Model            string `json:"model"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	TotalTokens      int64  `json:"total_tokens"`
	CachedTokens     int64  `json:"cached_tokens"`
	Known            bool   `json:"known"`
	Done             *bool  `json:"done,omitempty"`
	Events           *int   `json:"events,omitempty"`
}

// Usage is the golden result as a metering.Usage.
func (g Golden) Usage() metering.Usage {
	return metering.Usage{Model: g.Model, PromptTokens: g.PromptTokens, CompletionTokens: g.CompletionTokens,
		TotalTokens: g.TotalTokens, CachedTokens: g.CachedTokens, Known: g.Known}
}

// Case is one golden input.
type Case struct {
	Name   string // file name, e.g. "chat_stream.sse"
	Stream bool
	Input  []byte
	Want   Golden
}

// Events parses a stream case's input.
func (c Case) Events() []Event { return ParseSSE(c.Input) }

// Load reads the golden cases of dir; fewer than min is an error (a moved
// or renamed directory must not silently test nothing).
func Load(t testing.TB, dir string, min int) []Case {
	t.Helper()
	var cases []Case
	for _, pattern := range []string{"*.json", "*.sse"} {
		files, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			input, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			gb, err := os.ReadFile(strings.TrimSuffix(f, filepath.Ext(f)) + ".golden")
			if err != nil {
				t.Fatalf("%s: missing golden file: %v", f, err)
			}
			var want Golden
			dec := json.NewDecoder(bytes.NewReader(gb))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&want); err != nil {
				t.Fatalf("%s.golden: %v", f, err)
			}
			stream := filepath.Ext(f) == ".sse"
			if stream != (want.Done != nil && want.Events != nil) {
				t.Fatalf("%s.golden: done/events must be given exactly for .sse inputs", f)
			}
			cases = append(cases, Case{Name: filepath.Base(f), Stream: stream, Input: input, Want: want})
		}
	}
	if len(cases) < min {
		t.Fatalf("%s: found only %d golden cases, want at least %d", dir, len(cases), min)
	}
	return cases
}

// Feed meters events with a fresh stream meter and returns it with the
// number of events that carried data.
func Feed(m Meter, events []Event) (metering.StreamMeter, int) {
	sm := m.NewStreamMeter(false)
	n := 0
	for _, ev := range events {
		if len(ev.Data) > 0 {
			n++
		}
		sm.Event([]byte(ev.Name), ev.Data)
	}
	return sm, n
}

// RunGolden checks every case of dir (at least min) against m.
func RunGolden(t *testing.T, m Meter, dir string, min int) {
	for _, tc := range Load(t, dir, min) {
		t.Run(tc.Name, func(t *testing.T) {
			if !tc.Stream {
				if got := m.MeterJSON(tc.Input); got != tc.Want.Usage() {
					t.Errorf("MeterJSON:\n got  %+v\n want %+v", got, tc.Want.Usage())
				}
				CheckUsage(t, m.MeterJSON(tc.Input))
				return
			}
			sm, n := Feed(m, tc.Events())
			if got := sm.Usage(); got != tc.Want.Usage() {
				t.Errorf("Usage:\n got  %+v\n want %+v", got, tc.Want.Usage())
			}
			if sm.Done() != *tc.Want.Done {
				t.Errorf("Done = %v, want %v", sm.Done(), *tc.Want.Done)
			}
			if n != *tc.Want.Events {
				t.Errorf("events = %d, want %d", n, *tc.Want.Events)
			}
		})
	}
}

// RunPrefixNotDone cuts every complete golden stream of dir after each
// event: no proper prefix may report Done, and none may panic or report
// inconsistent usage.
func RunPrefixNotDone(t *testing.T, m Meter, dir string) {
	for _, tc := range Load(t, dir, 0) {
		if !tc.Stream || !*tc.Want.Done {
			continue
		}
		events := tc.Events()
		for n := 0; n < len(events); n++ {
			sm, _ := Feed(m, events[:n])
			if sm.Done() {
				t.Errorf("%s: Done after %d of %d events", tc.Name, n, len(events))
			}
			if u := sm.Usage(); u.Known && u.TotalTokens < u.PromptTokens {
				t.Errorf("%s: inconsistent usage %+v", tc.Name, u)
			}
		}
	}
}

// CheckUsage asserts the invariants every Usage must satisfy.
func CheckUsage(t testing.TB, u metering.Usage) {
	t.Helper()
	if !u.Known {
		if u.PromptTokens != 0 || u.CompletionTokens != 0 || u.TotalTokens != 0 || u.CachedTokens != 0 {
			t.Fatalf("unknown usage carries counts: %+v", u)
		}
		return
	}
	if u.PromptTokens < 0 || u.CompletionTokens < 0 || u.TotalTokens < 0 || u.CachedTokens < 0 {
		t.Fatalf("negative counts: %+v", u)
	}
}

// Fuzz feeds arbitrary bodies and event streams to m: no panic, invariants
// hold, and a meter does not retain the caller's buffers.
func Fuzz(f *testing.F, m Meter, dir string) {
	for _, tc := range Load(f, dir, 0) {
		f.Add(tc.Input)
	}
	f.Add([]byte(`{"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":9223372036854775807}}`))
	f.Add([]byte(`{"usage":{"input_tokens":1e308,"output_tokens":"12"}}`))
	f.Add([]byte(`[{"usageMetadata":{"promptTokenCount":1}},`))
	f.Fuzz(func(t *testing.T, b []byte) {
		CheckUsage(t, m.MeterJSON(b))
		sm, _ := Feed(m, ParseSSE(b))
		CheckUsage(t, sm.Usage())
		// The same bytes as single events, named and unnamed.
		sm = m.NewStreamMeter(true)
		buf := append([]byte(nil), b...)
		sm.Event(nil, buf)
		sm.Event([]byte("message_delta"), buf)
		u := sm.Usage()
		for i := range buf {
			buf[i] = 'x'
		}
		if sm.Usage() != u {
			t.Fatal("the meter retained the caller's buffer")
		}
		CheckUsage(t, u)
	})
}

// Ev builds an event.
func Ev(name, data string) Event { return Event{Name: name, Data: []byte(data)} }

// Unknown is the result for a response without usable usage.
func Unknown(model string) metering.Usage { return metering.Usage{Model: model} }

// JSONCase is one complete response body and its expected usage.
type JSONCase struct {
	Name string
	Body string
	Want metering.Usage
}

// RunJSONCases checks m.MeterJSON on each case.
func RunJSONCases(t *testing.T, m Meter, cases []JSONCase) {
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			if got := m.MeterJSON([]byte(tt.Body)); got != tt.Want {
				t.Errorf("MeterJSON(%s)\n got  %+v\n want %+v", tt.Body, got, tt.Want)
			}
		})
	}
}

// StreamCase is one event sequence and what the meter must say after it.
type StreamCase struct {
	Name   string
	Events []Event
	Want   metering.Usage
	Done   bool
}

// RunStreamCases feeds each case to a fresh stream meter.
func RunStreamCases(t *testing.T, m Meter, cases []StreamCase) {
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			sm, _ := Feed(m, tt.Events)
			if got := sm.Usage(); got != tt.Want {
				t.Errorf("Usage\n got  %+v\n want %+v", got, tt.Want)
			}
			if sm.Done() != tt.Done {
				t.Errorf("Done = %v, want %v", sm.Done(), tt.Done)
			}
		})
	}
}
