package usage

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
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
	n, err := s.Replay(256, 1<<20, func([][]byte) error { return boom })
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
	// Groups of at most 3 lines, never across segments: [r0 r1 r2] [r3].
	var got []string
	var sizes []int
	n, err = s2.Replay(3, 1<<20, func(lines [][]byte) error {
		sizes = append(sizes, len(lines))
		for _, l := range lines {
			got = append(got, string(l))
		}
		return nil
	})
	if err != nil || n != 4 {
		t.Fatalf("replay: n=%d err=%v", n, err)
	}
	if fmt.Sprint(sizes) != "[3 1]" {
		t.Fatalf("group sizes %v, want [3 1]", sizes)
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

// TestSpoolReplayGroupsByBytes: a group closes before it would exceed
// maxBytes; a line longer than maxBytes travels alone.
func TestSpoolReplayGroupsByBytes(t *testing.T) {
	s, err := OpenSpool(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"aaaa", "bbbb", "cccc", strings.Repeat("x", 50), "dddd"} {
		if err := s.Append([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	var groups []string
	if _, err := s.Replay(100, 12, func(lines [][]byte) error {
		groups = append(groups, string(bytes.Join(lines, []byte(","))))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"aaaa,bbbb", "cccc", strings.Repeat("x", 50), "dddd"}
	if fmt.Sprint(groups) != fmt.Sprint(want) {
		t.Fatalf("groups %q, want %q", groups, want)
	}
}
