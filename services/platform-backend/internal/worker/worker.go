// Package worker runs background jobs (sending mail) off the request path on
// a fixed set of owned goroutines with bounded queues. Jobs submitted with
// the same key run one after another in submission order.
package worker

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Job is one unit of background work. Its context ends when the pool's
// drain time after shutdown has passed.
type Job func(ctx context.Context)

// Errors of Submit.
var (
	ErrFull    = errors.New("worker: queue full")
	ErrStopped = errors.New("worker: stopped")
)

// Pool is a set of lanes, each a bounded queue served by one goroutine.
type Pool struct {
	log     *slog.Logger
	seed    maphash.Seed
	lanes   []chan Job
	wait    time.Duration
	drain   time.Duration
	stopped atomic.Bool
}

// Options size a pool.
type Options struct {
	Lanes int // goroutines (default 4)
	Queue int // queued jobs per lane (default 64)
	// SubmitWait is how long Submit waits for room in a full lane (default 1 s).
	SubmitWait time.Duration
	// Drain bounds how long Run keeps working through queued jobs after its
	// context ends (default 5 s); jobs still queued then are dropped and logged.
	Drain time.Duration
}

// New returns a pool; it does nothing until Run.
func New(log *slog.Logger, o Options) *Pool {
	if o.Lanes <= 0 {
		o.Lanes = 4
	}
	if o.Queue <= 0 {
		o.Queue = 64
	}
	if o.SubmitWait <= 0 {
		o.SubmitWait = time.Second
	}
	if o.Drain <= 0 {
		o.Drain = 5 * time.Second
	}
	p := &Pool{log: log, seed: maphash.MakeSeed(), lanes: make([]chan Job, o.Lanes), wait: o.SubmitWait, drain: o.Drain}
	for i := range p.lanes {
		p.lanes[i] = make(chan Job, o.Queue)
	}
	return p
}

// Submit queues job on key's lane. It waits up to SubmitWait (or until ctx
// ends) for room and then gives up with ErrFull.
func (p *Pool) Submit(ctx context.Context, key string, job Job) error {
	if p.stopped.Load() {
		return ErrStopped
	}
	lane := p.lanes[maphash.String(p.seed, key)%uint64(len(p.lanes))]
	select {
	case lane <- job:
		return nil
	default:
	}
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case lane <- job:
		return nil
	case <-t.C:
		return ErrFull
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run serves the lanes until ctx ends, then works through what is queued for
// at most the drain time and returns once every lane goroutine has exited.
// Stop submitting (stop the HTTP server) before ending ctx.
func (p *Pool) Run(ctx context.Context) {
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	var wg sync.WaitGroup
	for i, lane := range p.lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.serve(ctx, jobCtx, i, lane)
		}()
	}
	<-ctx.Done()
	p.stopped.Store(true)
	timer := time.AfterFunc(p.drain, cancelJobs)
	defer timer.Stop()
	wg.Wait()
}

func (p *Pool) serve(ctx, jobCtx context.Context, i int, lane chan Job) {
	for {
		var j Job
		select {
		case j = <-lane:
		case <-ctx.Done():
			// Stopping: take what is still queued, while the drain time lasts.
			select {
			case j = <-lane:
			default:
				return
			}
		}
		if jobCtx.Err() != nil {
			p.log.Warn("background jobs dropped at shutdown", "lane", i, "dropped", len(lane)+1)
			return
		}
		p.run(jobCtx, j)
	}
}

func (p *Pool) run(ctx context.Context, j Job) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("background job panicked", "panic", fmt.Sprint(r))
		}
	}()
	j(ctx)
}
