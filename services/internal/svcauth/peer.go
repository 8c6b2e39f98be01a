package svcauth

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// PeerState remembers whether the peer service accepted this service's
// tokens on the last call that reached it, for readiness: a peer that
// refuses them (our instance or key revoked, keys out of step) is not an
// outage of the peer and does not stop what can be served from caches,
// but an operator must see it.
type PeerState struct {
	peer string
	now  func() time.Time

	mu      sync.Mutex
	refused bool
	since   time.Time
	detail  string
}

// NewPeerState tracks calls to peer.
func NewPeerState(peer string) *PeerState { return &PeerState{peer: peer, now: time.Now} }

// Observe records the outcome of one call: Unauthenticated and
// PermissionDenied are refusals; any answer the peer's handler gave is an
// acceptance; transport failures (Unavailable, deadlines) change nothing.
func (p *PeerState) Observe(err error) {
	code := status.Code(err)
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	refused := code == codes.Unauthenticated || code == codes.PermissionDenied
	if refused && !p.refused {
		p.since = p.now()
	}
	p.refused = refused
	if refused {
		p.detail = status.Convert(err).Message()
	}
}

// UnaryClientInterceptor observes the calls of a connection to the peer
// that need a token (an answer of an open method says nothing about ours).
func (p *PeerState) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if !Open(method) {
			p.Observe(err)
		}
		return err
	}
}

// Probe fails while the peer refuses our tokens (a health check).
func (p *PeerState) Probe(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refused {
		return fmt.Errorf("%s refuses this instance's service tokens since %s: %s", p.peer, p.since.UTC().Format(time.RFC3339), p.detail)
	}
	return nil
}
