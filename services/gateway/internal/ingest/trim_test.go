package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

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
	floor, err := trim(ctx, js, streams.Name, in.durable, 0)
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
	if again, err := trim(ctx, js, streams.Name, in.durable, floor); err != nil || again != 30 {
		t.Fatalf("second trim: %d, %v", again, err)
	}
}
