package usage

import (
	"errors"
	"fmt"
	"testing"
)

func TestSpoolReplayAndBound(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 200)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := s.Append([]byte(fmt.Sprintf(`{"request_id":"r%d"}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Append(make([]byte, 200)); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("over the bound: %v", err)
	}
	// A failing send keeps everything for the next replay.
	boom := errors.New("nats down")
	n, err := s.Replay(func([]byte) error { return boom })
	if n != 0 || !errors.Is(err, boom) || s.Empty() {
		t.Fatalf("failed replay: n=%d err=%v empty=%v", n, err, s.Empty())
	}
	// Events appended after a seal survive in the next segment.
	_ = s.Append([]byte(`{"request_id":"r3"}`))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen (process restart) and replay everything in order.
	s2, err := OpenSpool(dir, 200)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	n, err = s2.Replay(func(line []byte) error { got = append(got, string(line)); return nil })
	if err != nil || n != 4 {
		t.Fatalf("replay: n=%d err=%v", n, err)
	}
	for i, line := range got {
		if want := fmt.Sprintf(`{"request_id":"r%d"}`, i); line != want {
			t.Fatalf("line %d = %s, want %s", i, line, want)
		}
	}
	if !s2.Empty() {
		t.Fatal("spool not empty after a full replay")
	}
}
