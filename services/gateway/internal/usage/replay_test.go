package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// spoolLine is ev as an older gateway spooled it (JSON): replay reads those
// as it reads current (binary) lines.
func spoolLine(t *testing.T, ev Event) []byte {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testUsageEvent(id string) Event {
	return Event{RequestID: id, CreatedAt: time.Now().UTC(), TenantID: "6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11", Env: "production",
		Provider: "openai", Model: "gpt-4o-mini", Path: "/chat/completions", StatusCode: 200, Outcome: OutcomeOK}
}

// TestSpoolReplaySkipsNothingWedgesOnNothing: a spool as a gateway without
// sanitising left it (a line with a 2 MB model, over NATS's max payload; a
// torn line; a line that is not an event) between good events. Replay
// publishes every event (the oversized one cut to fit), sends the two bad
// lines to the dead-letter stream, and empties the spool. Before, the 2 MB
// line failed its publish at every replay and everything after it stayed
// spooled for good.
func TestSpoolReplaySkipsNothingWedgesOnNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc, js, stream, subject := testStream(t, "replay")
	streams := NewStreams(stream, subject, 64<<20, 16<<20, 1)
	spool, err := OpenSpool(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	huge := testUsageEvent("huge")
	huge.Model = strings.Repeat("m", 2<<20)
	lines := [][]byte{spoolLine(t, testUsageEvent("a")), spoolLine(t, huge), []byte(`{"request_id":"torn","tena`),
		spoolLine(t, testUsageEvent("b")), []byte(`plain text`), spoolLine(t, testUsageEvent("c"))}
	for _, l := range lines {
		if err := spool.Append(l); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := NewPublisher(nc, subject, spool, log)
	if err != nil {
		t.Fatal(err)
	}
	pub.SetDeadLetters(streams.DeadLetterSubject)
	pub.replay()
	if !spool.Empty() {
		t.Fatal("spool not empty after one replay")
	}
	if c := pub.Counters(); c.Published != 4 || c.DeadLettered != 2 || c.Lost != 0 {
		t.Fatalf("counters %+v, want 4 published, 2 dead-lettered", c)
	}
	got := map[string]Event{}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for len(got) < 4 {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		for _, line := range strings.Split(string(msg.Data()), "\n") {
			ev, err := Decode([]byte(line))
			if err != nil {
				t.Fatal(err)
			}
			got[ev.RequestID] = ev
		}
	}
	if m := got["huge"].Model; len(m) != MaxModelBytes || !strings.HasSuffix(m, TruncationMark) {
		t.Errorf("the 2 MB model was published as %d bytes", len(m))
	}
	var dead []string
	if err := ReadDeadLetters(ctx, js, streams, 0, func(d StoredDeadLetter) error {
		if d.Stage != StageSpool {
			t.Errorf("dead letter stage %q", d.Stage)
		}
		dead = append(dead, d.Raw)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(dead) != fmt.Sprint([]string{`{"request_id":"torn","tena`, "plain text"}) {
		t.Errorf("dead letters %q", dead)
	}
}

// TestSpoolFullDisk: with the spool at its bound, or its disk full, events
// are counted lost and Publish returns at once (the proxy goes on); a write
// that fails halfway leaves no partial line behind; once the spool drains,
// events spool again.
func TestSpoolFullDisk(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatal(err)
	}
	nc.Close() // NATS unreachable: every event spools
	dir := t.TempDir()
	first := testUsageEvent("req-000")
	line, _, err := Encode(&first, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	one := len(line) + 1
	spool, err := OpenSpool(dir, int64(3*one+one/2)) // room for three events
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(nc, "unused", spool, log)
	if err != nil {
		t.Fatal(err)
	}
	pub.Close() // Publish spools synchronously, as when the queue is full
	for i := range 5 {
		ev := testUsageEvent(fmt.Sprintf("req-%03d", i))
		pub.Publish(&ev)
	}
	if c := pub.Counters(); c.Spooled != 3 || c.Lost != 2 {
		t.Fatalf("spool bound: counters %+v, want 3 spooled, 2 lost", c)
	}

	// The disk fills up in the middle of a line: the line is lost, the
	// file keeps its three whole lines.
	spool.write = func(f *os.File, b []byte) (int, error) {
		n, _ := f.Write(b[:len(b)/2])
		return n, syscall.ENOSPC
	}
	spool.maxBytes = 1 << 20
	ev := testUsageEvent("req-torn")
	pub.Publish(&ev)
	if c := pub.Counters(); c.Lost != 3 {
		t.Fatalf("full disk: counters %+v, want 3 lost", c)
	}
	spool.write = (*os.File).Write // room again
	ev = testUsageEvent("req-after")
	pub.Publish(&ev)
	var ids []string
	if _, err := spool.Replay(100, 1<<20, func(lines [][]byte) error {
		for _, l := range lines {
			ev, err := Decode(l)
			if err != nil {
				return fmt.Errorf("spooled line %q: %w", l, err)
			}
			ids = append(ids, ev.RequestID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids) != "[req-000 req-001 req-002 req-after]" {
		t.Fatalf("spool held %v", ids)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Fatalf("spool files left: %v", files)
	}
	if !errors.Is(spool.Append(make([]byte, 2<<20)), ErrSpoolFull) {
		t.Fatal("the bound no longer holds")
	}
}

// TestPublisherCreatesMissingStreams: a gateway that could not create its
// streams at start (NATS was down) creates them once NATS answers, and
// the events spooled meanwhile are published. Before, nobody created them
// and every event spooled until the spool was full.
func TestPublisherCreatesMissingStreams(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close) // after the streams' deletion below (cleanups run last first)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	streams := testStreams("missing") // not created
	t.Cleanup(func() { DeleteStreams(context.Background(), js, streams) })
	spool, err := OpenSpool(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(nc, streams.Subject, spool, log)
	if err != nil {
		t.Fatal(err)
	}
	pub.SetStreams(streams)
	for i := range 10 {
		ev := testUsageEvent(fmt.Sprintf("req-%d", i))
		pub.Publish(&ev)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); pub.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for pub.Counters().Published < 10 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	<-done
	if c := pub.Counters(); c.Published != 10 || c.Lost != 0 {
		t.Fatalf("counters %+v, want 10 published", c)
	}
}
