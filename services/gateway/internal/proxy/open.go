package proxy

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Open calls (docs/decisions.md, "Stream keep-alives" and "Graceful stop").
// Every call with an upstream request in flight is on one list, so that the
// gateway's shutdown can end them all (EndCalls) and one ticker (Run) can
// find the streams that have been silent toward their client and send them
// a keep-alive. The list's nodes live in the calls: joining and leaving it
// allocate nothing, and a stream costs no timer of its own.

// errTextShutdown is the usage event's error of a call EndCalls cut.
const errTextShutdown = "cut by the gateway's shutdown at the end of its grace period"

// keepAliveTicks is how many ticks of Run make one keep-alive interval: a
// stream gets its keep-alive after between 1 and 1.25 intervals of silence.
const keepAliveTicks = 4

// openCalls is the list of calls with an upstream request in flight.
type openCalls struct {
	mu     sync.Mutex
	head   *openCall
	ending bool // EndCalls ran: calls that start later are ended at once
}

// openCall is a call's node on the list.
type openCall struct {
	prev, next *openCall
	listed     bool
	cancel     context.CancelFunc // cancels the upstream request
	// ended is set when EndCalls cut the call.
	ended atomic.Bool
	// streaming is set once out is ready for keep-alives.
	streaming atomic.Bool
	out       streamOut
}

// add lists c with the cancel function of its upstream request; during the
// shutdown's end it cancels the request at once instead.
func (o *openCalls) add(c *openCall, cancel context.CancelFunc) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c.cancel = cancel
	if o.ending {
		c.ended.Store(true)
		cancel()
		return
	}
	c.next = o.head
	if o.head != nil {
		o.head.prev = c
	}
	o.head, c.listed = c, true
}

// remove takes c off the list.
func (o *openCalls) remove(c *openCall) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !c.listed {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		o.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	c.prev, c.next, c.listed = nil, nil, false
}

// end cancels every listed call and every call listed later; it returns
// how many it cancelled.
func (o *openCalls) end() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ending = true
	n := 0
	for c := o.head; c != nil; c = c.next {
		c.ended.Store(true)
		c.cancel()
		n++
	}
	return n
}

// tick starts a keep-alive for every stream silent for keepAliveTicks
// ticks; it never writes itself (a client that does not read must not
// stall the ticker).
func (o *openCalls) tick(sent func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for c := o.head; c != nil; c = c.next {
		if !c.streaming.Load() {
			continue
		}
		s := &c.out
		if s.wrote.Swap(false) {
			s.silent = 0
			continue
		}
		if s.silent++; s.silent >= keepAliveTicks && s.sending.CompareAndSwap(false, true) {
			s.silent = 0
			go s.sendKeepAlive(sent)
		}
	}
}

// streamOut is what a stream writes to its client: events from the relay
// and keep-alives from the ticker, one at a time, so that a keep-alive
// only ever falls between two events.
type streamOut struct {
	mu        sync.Mutex
	w         http.ResponseWriter
	rc        http.ResponseController
	keepAlive []byte // nil: the stream gets none
	closed    bool   // no keep-alive may follow (under mu)
	// wrote is set by every write of the relay; the ticker clears it.
	wrote atomic.Bool
	// silent counts the ticks without a write (under openCalls.mu).
	silent int
	// sending is set while a keep-alive is on its way.
	sending atomic.Bool
}

// start readies the stream's output; keepAlive nil sends no keep-alives.
func (c *openCall) start(w http.ResponseWriter, keepAlive []byte) {
	s := &c.out
	s.w, s.rc, s.keepAlive = w, *http.NewResponseController(w), keepAlive
	if keepAlive != nil {
		c.streaming.Store(true)
	}
}

// write sends b (whole events) and flushes it unless more follows at once.
func (s *streamOut) write(b []byte, flush bool) error {
	s.mu.Lock()
	_, err := s.w.Write(b)
	if err == nil && flush {
		err = s.rc.Flush()
	}
	s.mu.Unlock()
	if !s.wrote.Load() {
		s.wrote.Store(true)
	}
	return err
}

// stop ends keep-alives: what the relay writes next may be a partial event
// or the last one. It waits for a keep-alive being written.
func (s *streamOut) stop() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// sendKeepAlive writes one keep-alive unless the stream has stopped.
func (s *streamOut) sendKeepAlive(sent func()) {
	defer s.sending.Store(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if _, err := s.w.Write(s.keepAlive); err == nil {
		_ = s.rc.Flush()
		sent()
	}
}

// Run sends the keep-alives of streams silent toward their client for
// Options.KeepAliveInterval, until ctx ends; with no interval it returns at
// once. One ticker serves every stream.
func (p *Proxy) Run(ctx context.Context) {
	d := p.opts.KeepAliveInterval
	if d <= 0 {
		return
	}
	t := time.NewTicker(max(d/keepAliveTicks, time.Millisecond))
	defer t.Stop()
	sent := p.opts.Metrics.keepAliveSent
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.open.tick(sent)
		}
	}
}

// EndCalls ends every call with an upstream request in flight, and every
// call that sends one from now on: the upstream request is cancelled; a
// stream ends with its provider's error event and a call still waiting for
// the upstream's answer gets a 503 in the provider's shape; their usage
// events say they were cut by the shutdown. The gateway calls it when its
// shutdown grace period ends. It returns how many calls it ended.
func (p *Proxy) EndCalls() int {
	n := p.open.end()
	if n > 0 {
		p.log.Warn("shutdown grace period over: ending open calls", "calls", n)
	}
	return n
}
