// Package providertest holds the table-test runner shared by the provider
// packages' stream-text parsers (provider.StreamText).
package providertest

import (
	"fmt"
	"strings"
	"testing"

	"trueportai/services/gateway/internal/provider"
)

// StreamTextCase is one event and what its parser must find in it.
type StreamTextCase struct {
	Name, Data string
	Kind       provider.EventKind
	End        bool
	Want       string // "channel:text" of each delta, in order, in brackets: "[0:Hi 1:yo]"
}

// Case is a StreamTextCase in the order of its fields.
func Case(name, data string, kind provider.EventKind, end bool, want string) StreamTextCase {
	return StreamTextCase{Name: name, Data: data, Kind: kind, End: end, Want: want}
}

// RunStreamTextCases parses each case's data with parse and compares the
// event's kind, end and deltas (each delta's bounds must be a string
// literal of the data).
func RunStreamTextCases(t *testing.T, parse func(data []byte, ev *provider.StreamEvent), cases []StreamTextCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			var ev provider.StreamEvent
			ev.Reset()
			parse([]byte(tc.Data), &ev)
			got := make([]string, len(ev.Deltas))
			for i, d := range ev.Deltas {
				got[i] = fmt.Sprintf("%d:%s", d.Channel, d.Text)
				if lit := tc.Data[d.Start:d.End]; len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
					t.Errorf("delta %d bounds %q: not a string literal", i, lit)
				}
			}
			if deltas := "[" + strings.Join(got, " ") + "]"; ev.Kind != tc.Kind || ev.End != tc.End || deltas != tc.Want {
				t.Fatalf("kind %v end %v deltas %s; want kind %v end %v deltas %s", ev.Kind, ev.End, deltas, tc.Kind, tc.End, tc.Want)
			}
		})
	}
}
