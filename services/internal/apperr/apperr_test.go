package apperr

import (
	"errors"
	"sync"
	"testing"
)

// A shared error given details by concurrent requests: each gets its own
// details and the shared value keeps none. (When WithDetails set the field
// on its receiver this raced, and -race reported it.)
func TestWithDetailsLeavesTheSharedErrorAlone(t *testing.T) {
	shared := New(NotFound, "tenant_not_found", "no such tenant")
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 100 {
				got := shared.WithDetails(map[string]any{"n": i})
				if got == shared || got.Details["n"] != i {
					t.Errorf("WithDetails(n=%d) = %p %v, want a copy with its own details", i, got, got.Details)
					return
				}
				if got.Kind != NotFound || got.Code != "tenant_not_found" || got.Message != "no such tenant" {
					t.Errorf("copy lost fields: %+v", got)
					return
				}
			}
		})
	}
	wg.Wait()
	if shared.Details != nil {
		t.Errorf("shared error was changed: %v", shared.Details)
	}
}

func TestWithDetailsKeepsCauseAndRetryAfter(t *testing.T) {
	cause := errors.New("dial tcp: refused")
	e := Wrap(Unavailable, "gateway_unavailable", "the gateway cannot be reached", cause)
	e.RetryAfter = 7
	got := e.WithDetails(map[string]any{"x": 1})
	if !errors.Is(got, cause) || got.RetryAfter != 7 {
		t.Errorf("copy = %+v (cause kept: %v)", got, errors.Is(got, cause))
	}
}
