package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// withJetStream runs f with a JetStream context on the server at url
// (empty: the shared one) and a 5 s deadline.
func withJetStream(url string, f func(ctx context.Context, js jetstream.JetStream) error) error {
	if url == "" {
		url = natsURL()
	}
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return f(ctx, js)
}

// deleteStream removes the usage stream and its dead-letter stream a test
// created on the shared NATS.
func deleteStream(prefix string) {
	_ = withJetStream("", func(ctx context.Context, js jetstream.JetStream) error {
		_ = js.DeleteStream(ctx, strings.ToUpper(prefix)+"_USAGE")
		_ = js.DeleteStream(ctx, strings.ToUpper(prefix)+"_USAGE_DLQ")
		return nil
	})
}

// usageConsumer returns the info of the ingester's durable consumer on the
// usage stream of a test's NATS prefix, on the server at url (empty: the
// shared one).
func usageConsumer(prefix, url string) (ci *jetstream.ConsumerInfo, err error) {
	err = withJetStream(url, func(ctx context.Context, js jetstream.JetStream) error {
		cons, err := js.Consumer(ctx, strings.ToUpper(prefix)+"_USAGE", "usage-ingester")
		if err != nil {
			return err
		}
		ci, err = cons.Info(ctx)
		return err
	})
	return ci, err
}

// usageStream is the state of the usage stream of prefix on the server at
// url (empty: the shared one).
func usageStream(prefix, url string) (st jetstream.StreamState, err error) {
	err = withJetStream(url, func(ctx context.Context, js jetstream.JetStream) error {
		s, err := js.Stream(ctx, strings.ToUpper(prefix)+"_USAGE")
		if err != nil {
			return err
		}
		st = s.CachedInfo().State
		return nil
	})
	return st, err
}

// usageDrained is nil once the ingester's consumer of the stack's usage
// stream has nothing pending and nothing unacknowledged.
func (s *stack) usageDrained() error {
	ci, err := usageConsumer(s.envValue("NATS_PREFIX"), s.envValue("NATS_URL"))
	if err != nil {
		return err
	}
	if ci.NumPending != 0 || ci.NumAckPending != 0 {
		return fmt.Errorf("usage consumer: %d pending, %d unacknowledged", ci.NumPending, ci.NumAckPending)
	}
	return nil
}

func natsURL() string {
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	return nats.DefaultURL
}
