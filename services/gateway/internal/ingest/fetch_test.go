package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"trueportai/services/gateway/internal/analytics"
)

// TestIngesterFetchesAMessageLargerThanItsBatch: a usage message larger
// than the ingester's fetch bound (role all fetches less than the 1 MiB a
// message may hold) is stored, and so are the messages after it. Before,
// JetStream ended every fetch at once with nothing, and ingestion stopped
// behind that message for good.
func TestIngesterFetchesAMessageLargerThanItsBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool := migratedPool(t, "bigmsg")
	_, js, stream, subject := testStream(t, "bigmsg")
	const fetchBytes = 16 << 10
	var want []string
	message := func(prefix string, n int) []byte {
		lines := make([]string, n)
		for i := range n {
			id := fmt.Sprintf("%s-%04d", prefix, i)
			want = append(want, id)
			lines[i] = string(encodedTestEvent(t, id))
		}
		return []byte(strings.Join(lines, "\n"))
	}
	msgs := [][]byte{message("a", 1), message("b", 256), message("c", 1), message("d", 256), message("e", 1)}
	for i, m := range msgs {
		if i%2 == 1 && len(m) <= fetchBytes {
			t.Fatalf("message %d is %d bytes, not above the fetch bound %d", i, len(m), fetchBytes)
		}
		if _, err := js.Publish(ctx, subject, m); err != nil {
			t.Fatal(err)
		}
	}
	in := NewIngester(analytics.New(pool), js, stream, noTouch{}, log)
	in.SetFetchBytes(fetchBytes)
	ictx, istop := context.WithCancel(ctx)
	defer istop()
	go func() { _ = in.Run(ictx) }()
	waitDrained(t, js, stream)
	slices.Sort(want)
	if got := storedIDs(t, pool); !slices.Equal(got, want) {
		t.Fatalf("stored %d request ids, want the %d published (first stored %v)", len(got), len(want), got[:min(len(got), 3)])
	}
}
