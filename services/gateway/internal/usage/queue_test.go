package usage

import (
	"io"
	"log/slog"
	"runtime"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestQueueMemory: the queue between Publish and the sender is one live
// object whose every slot a ring buffer touches in turn, so all of it is
// resident (and GOGC adds as much garbage room on top). It must hold a
// stall's worth of batches but stay small: it was 1 MiB (16 384 slots).
func TestQueueMemory(t *testing.T) {
	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p, err := NewPublisher(nc, "test.queue", nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if c := cap(p.queue); c < 16*maxBatchEvents {
		t.Errorf("queue of %d events: fewer than 16 batches of %d", c, maxBatchEvents)
	}
	if grew > 384<<10 {
		t.Errorf("NewPublisher holds %d KiB (want at most 384 KiB: the queue's buffer is live for the process's life)", grew>>10)
	}
	t.Logf("NewPublisher: %d KiB live, queue of %d events", grew>>10, cap(p.queue))
	runtime.KeepAlive(p)
}
