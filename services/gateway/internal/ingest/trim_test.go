package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"trueportai/services/gateway/internal/usage"
)

// okWriter stores nothing and reports every event new.
type okWriter struct{}

func (okWriter) Insert(_ context.Context, evs []usage.Event) (int, error) { return len(evs), nil }

// TestTrimRemovesAcknowledgedMessages: messages the ingester acknowledged
// leave the usage stream, the others stay. Before, acknowledged messages
// stayed until MaxAge (14 days): the stream reached MaxBytes within hours
// at a steady 1 000 req/s and refused every publish from then on.
func TestTrimRemovesAcknowledgedMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, js, streams := testStreamsOn(t, "trim")
	publish := func(from, n int) {
		for i := from; i < from+n; i++ {
			b, _ := json.Marshal(testEvent(fmt.Sprintf("req-%d", i)))
			msg := &nats.Msg{Subject: streams.Subject, Data: b, Header: nats.Header{}}
			msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("req-%d", i))
			if _, err := js.PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, 30)
	in := NewIngester(okWriter{}, js, streams.Name, noTouch{}, log)
	ictx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = in.Run(ictx) }()
	waitDrained(t, js, streams.Name)
	stop()
	<-done
	publish(30, 5) // not consumed: must stay
	floor, err := trim(ctx, js, streams.Name, in.durable, 0, &in.cycle)
	if err != nil || floor != 30 {
		t.Fatalf("trim: floor %d, %v", floor, err)
	}
	s, err := js.Stream(ctx, streams.Name)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.CachedInfo().State; st.Msgs != 5 || st.FirstSeq != 31 {
		t.Fatalf("stream holds %d messages from %d, want the 5 unconsumed from 31", st.Msgs, st.FirstSeq)
	}
	if again, err := trim(ctx, js, streams.Name, in.durable, floor, &in.cycle); err != nil || again != 30 {
		t.Fatalf("second trim: %d, %v", again, err)
	}
}

// TestTrimKeepsPending: messages delivered but not yet acknowledged when the
// trim runs are redelivered after AckWait. nats-server before 2.9.15 (the
// machine's Debian 2.9.10) forgot them on a partial purge: without the
// guard in trim, none of the 20 came back and their events were lost.
func TestTrimKeepsPending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js, streams := testStreamsOn(t, "trimpending")
	for i := range 40 {
		if _, err := js.Publish(ctx, streams.Subject, []byte(fmt.Sprintf("m%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, streams.Name, jetstream.ConsumerConfig{
		Durable: "trimtest", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Second, MaxDeliver: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(40)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if md, _ := m.Metadata(); md.Sequence.Stream <= 20 {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	var quiesce sync.RWMutex
	floor, err := trim(ctx, js, streams.Name, "trimtest", 0, &quiesce)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("nats-server %s: trim floor %d", js.Conn().ConnectedServerVersion(), floor)
	got := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < 20 && time.Now().Before(deadline) {
		b, err := cons.Fetch(40, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			got[string(m.Data())] = true
			_ = m.Ack()
		}
	}
	for i := 20; i < 40; i++ {
		if !got[fmt.Sprintf("m%d", i)] {
			t.Fatalf("m%d was pending at the trim and never redelivered (%d of 20 came back)", i, len(got))
		}
	}
	// Nothing pending now: the trim purges what was acknowledged.
	if !waitFor(10*time.Second, func() bool {
		f, err := trim(ctx, js, streams.Name, "trimtest", floor, &quiesce)
		return err == nil && f == 40
	}) {
		t.Fatal("the trim never reached the ack floor 40 once nothing was pending")
	}
	s, err := js.Stream(ctx, streams.Name)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.CachedInfo().State; st.Msgs != 0 {
		t.Fatalf("stream holds %d messages after the final trim, want 0", st.Msgs)
	}
}

func waitFor(d time.Duration, ok func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if ok() {
			return true
		}
	}
	return false
}

func TestPurgeLosesPending(t *testing.T) {
	for _, c := range []struct {
		v    string
		want bool
	}{
		{"2.9.10", true}, {"2.9.14", true}, {"2.9.15", false}, {"2.9.25", false}, {"2.10.0", false},
		{"2.15.2", false}, {"v2.11.1", false}, {"2.10.0-beta.1", false}, {"2.8.4", true}, {"1.4.0", true},
		{"3.0.0", false}, {"", true}, {"garbage", true}, {"2.x.1", true},
	} {
		if got := purgeLosesPending(c.v); got != c.want {
			t.Errorf("purgeLosesPending(%q) = %v, want %v", c.v, got, c.want)
		}
	}
}
