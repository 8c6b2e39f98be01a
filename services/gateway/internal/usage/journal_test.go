package usage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"trueportai/services/gateway/internal/journal"
)

func (e *Event) withID(id string) *Event { e.RequestID = id; return e }

func testEvent(i int) *Event {
	return &Event{RequestID: fmt.Sprintf("req-%d", i), CreatedAt: time.Now().UTC(), TenantID: "6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11",
		Env: "production", Provider: "openai", Path: "/chat/completions", StatusCode: 200, Outcome: OutcomeOK}
}

// TestJournalKeepsUnsentEvents: events Publish queued but nobody sent (the
// process died) are in the journal, and the next start's OpenJournal moves
// each of them to the spool once.
func TestJournalKeepsUnsentEvents(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := filepath.Join(t.TempDir(), "journal")
	spool, err := OpenSpool(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	j := OpenJournal(dir, 0, MessageLimit(nil), spool, log)
	if j == nil {
		t.Fatal("journal not opened")
	}
	pub := benchPublisher(nil)
	pub.SetJournal(j)
	const n = 300
	for i := range n {
		pub.Publish(testEvent(i))
	}
	j.Close() // the queue is never sent: as if the process had died

	spool2, err := OpenSpool(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	j2 := OpenJournal(dir, 0, MessageLimit(nil), spool2, log)
	defer j2.Close()
	if got := j2.Stats().Recovered; got != n {
		t.Fatalf("recovered %d events, want %d", got, n)
	}
	seen := map[string]int{}
	if _, err := spool2.Replay(1000, 1<<20, func(lines [][]byte) error {
		for _, l := range lines {
			ev, err := Decode(l)
			if err != nil {
				return err
			}
			seen[ev.RequestID]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if id := fmt.Sprintf("req-%d", i); seen[id] != 1 {
			t.Fatalf("%s spooled %d times", id, seen[id])
		}
	}
	if len(seen) != n {
		t.Fatalf("%d events spooled, want %d", len(seen), n)
	}
}

// TestPublisherReleasesJournal: events JetStream acknowledged are released
// from the journal: a publisher that published everything leaves no
// segment behind, and the next start recovers nothing.
func TestPublisherReleasesJournal(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc, _, _, subject := testStream(t, "journal")
	spool, err := OpenSpool(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "journal")
	j := OpenJournal(dir, 0, MessageLimit(nc), spool, log)
	pub, err := NewPublisher(nc, subject, spool, log)
	if err != nil {
		t.Fatal(err)
	}
	pub.SetJournal(j)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); j.Run(ctx) }()
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); pub.Run(ctx) }()
	// In bursts of 1 000, each acknowledged before the next: one burst of
	// 5 000 is more than the publisher's queue holds (4 096), and what the
	// queue cannot take is spooled, not journaled.
	const n, burst = 5000, 1000
	deadline := time.Now().Add(20 * time.Second)
	for sent := 0; sent < n; {
		for range burst {
			pub.Publish(testEvent(sent))
			sent++
		}
		for pub.Counters().Published < int64(sent) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	stop()
	<-pubDone
	<-done
	j.Close()
	if c := pub.Counters(); c.Published != n || c.Spooled != 0 {
		t.Fatalf("counters %+v", c)
	}
	// (A burst may outrun the making of the next segment: those events
	// are counted, not journaled.)
	if st := j.Stats(); st.Appended == 0 || st.Appended+st.Skipped[journal.ReasonNoSegment] != n {
		t.Fatalf("journal %+v, want %d appended or counted", st, n)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.journal")); len(m) != 0 {
		t.Fatalf("segments left after every event was acknowledged: %v", m)
	}
}

// TestReplayIDsNeverHideEvents: a replayed group whose first event and
// size match a message already in the stream but whose other events differ
// (the journal's order is not the batches' order: a recovered segment holds
// events of several batches, some acknowledged, some not) must still be
// stored. With the live batches' ids (first request id + "+" + count),
// JetStream took it for a duplicate of the live message and dropped it,
// and the events only in it were lost.
func TestReplayIDsNeverHideEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc, js, stream, subject := testStream(t, "replayid")
	spool, err := OpenSpool(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(nc, subject, spool, log)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(id string) []byte {
		b, _, err := Encode(testEvent(0).withID(id), MessageLimit(nc))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The live message "a+1" (events a and b) was published and stored.
	live := &nats.Msg{Subject: subject, Data: bytes.Join([][]byte{enc("a"), enc("b")}, []byte{'\n'}), Header: nats.Header{}}
	live.Header.Set(jetstream.MsgIDHeader, "a+1")
	if _, err := js.PublishMsg(ctx, live); err != nil {
		t.Fatal(err)
	}
	// The replay of a recovered segment groups a with c (never published).
	if err := spool.AppendLines([][]byte{enc("a"), enc("c")}); err != nil {
		t.Fatal(err)
	}
	pub.replay()
	seen := map[string]bool{}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			break
		}
		for _, line := range bytes.Split(msg.Data(), []byte{'\n'}) {
			ev, err := Decode(line)
			if err != nil {
				t.Fatal(err)
			}
			seen[ev.RequestID] = true
		}
	}
	if !seen["c"] {
		t.Fatalf("event c, replayed in a group named like a stored message, is not in the stream (saw %v)", seen)
	}
}
