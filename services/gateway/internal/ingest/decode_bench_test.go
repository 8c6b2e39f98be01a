package ingest

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// dataMsg is a fetched message that only has data (no metadata: the
// sequence reads as 0).
type dataMsg struct {
	jetstream.Msg
	data []byte
}

func (m dataMsg) Data() []byte                              { return m.data }
func (m dataMsg) Metadata() (*jetstream.MsgMetadata, error) { return nil, errors.New("no metadata") }

// BenchmarkDecodeBatch decodes what one fetch of role all holds under load
// (INGESTER_FETCH_BYTES 512 KiB: six messages of 256 binary events), as the
// fetch stage does before handing the batch on.
func BenchmarkDecodeBatch(b *testing.B) {
	fleet := newBenchFleet(rand.New(rand.NewPCG(1, 2)))
	payloads, ids, _ := fleet.events(6*256, time.Now().UTC().Add(-time.Hour), "binary")
	data, _ := batchMessages(payloads, ids, 256)
	msgs := make([]jetstream.Msg, len(data))
	for i, d := range data {
		msgs[i] = dataMsg{data: d}
	}
	in := &Ingester{ackWait: time.Minute}
	b.ReportAllocs()
	for b.Loop() {
		f := in.decodeBatch(msgs)
		f.stopKeepAlive()
		if len(f.evs) != len(payloads) {
			b.Fatalf("%d events, want %d", len(f.evs), len(payloads))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(payloads)), "ns/event")
}
