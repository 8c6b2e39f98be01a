package e2e

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// deleteStream removes the usage stream and its dead-letter stream a test
// created on the shared NATS.
func deleteStream(prefix string) {
	nc, err := nats.Connect(natsURL(), nats.Timeout(2*time.Second))
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = js.DeleteStream(ctx, strings.ToUpper(prefix)+"_USAGE")
	_ = js.DeleteStream(ctx, strings.ToUpper(prefix)+"_USAGE_DLQ")
}

// usageConsumer returns the info of the ingester's durable consumer on the
// usage stream of a test's NATS prefix, on the server at url (empty: the
// shared one).
func usageConsumer(prefix, url string) (*jetstream.ConsumerInfo, error) {
	if url == "" {
		url = natsURL()
	}
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, strings.ToUpper(prefix)+"_USAGE", "usage-ingester")
	if err != nil {
		return nil, err
	}
	return cons.Info(ctx)
}

// usageStream is the state of the usage stream of prefix.
func usageStream(prefix, url string) (jetstream.StreamState, error) {
	if url == "" {
		url = natsURL()
	}
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return jetstream.StreamState{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return jetstream.StreamState{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, strings.ToUpper(prefix)+"_USAGE")
	if err != nil {
		return jetstream.StreamState{}, err
	}
	return st.CachedInfo().State, nil
}

func natsURL() string {
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	return nats.DefaultURL
}
