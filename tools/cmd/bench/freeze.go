package main

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// freezeProbe watches for the machine itself stopping. One thread per CPU,
// pinned to it and scheduled SCHED_FIFO (so that no ordinary task of this
// machine can keep it waiting), sleeps 10 ms at a time; a wake-up later than
// the threshold means that CPU ran nothing of this machine's for that long:
// the hypervisor did not run the virtual CPU (a host CPU quota throttles
// it), or the kernel held it. Every process on that CPU stood still with
// the probe, the load generator and the bare proxy as much as the gateway.
// It wakes every 10 ms: often enough to time a gap of 15 ms or more, seldom
// enough not to preempt the runs it watches (a 1 ms tick woke each CPU
// 1 000 times a second, in the middle of the requests).
type freezeProbe struct {
	threshold time.Duration
	stop      chan struct{}
	wg        sync.WaitGroup

	mu      sync.Mutex
	freezes []freeze
}

// freeze is one late wake-up of the probe: the CPU stood still from start
// for about late.
type freeze struct {
	start time.Time
	cpu   int
	late  time.Duration
}

// probeTick is the probe's sleep. A gap of length g that begins during a
// sleep makes the wake-up late by between g minus the tick and g: with the
// 10 ms tick, gaps of 25 ms and more always reach the 15 ms threshold,
// shorter ones may not.
const probeTick = 10 * time.Millisecond

// startFreezeProbe starts a probe thread on every CPU; it fails where a
// thread cannot be made SCHED_FIFO (not root, or no CAP_SYS_NICE).
func startFreezeProbe(threshold time.Duration) (*freezeProbe, error) {
	p := &freezeProbe{threshold: threshold, stop: make(chan struct{})}
	ready := make(chan error)
	n := runtime.NumCPU()
	for cpu := range n {
		p.wg.Go(func() { p.watch(cpu, ready) })
	}
	var errs []string
	for range n {
		if err := <-ready; err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		p.close()
		return nil, fmt.Errorf("freeze probe: %s", strings.Join(errs, "; "))
	}
	return p, nil
}

// watch runs one CPU's probe thread until close.
func (p *freezeProbe) watch(cpu int, ready chan<- error) {
	runtime.LockOSThread() // the thread ends with the goroutine: it keeps its policy
	if err := pinThread(cpu); err != nil {
		ready <- fmt.Errorf("cpu %d: affinity: %w", cpu, err)
		return
	}
	if err := setFIFO(probePriority); err != nil {
		ready <- fmt.Errorf("cpu %d: SCHED_FIFO: %w", cpu, err)
		return
	}
	ready <- nil
	tick := unix.NsecToTimespec(probeTick.Nanoseconds())
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		t0 := time.Now()
		_ = unix.Nanosleep(&tick, nil)
		if late := time.Since(t0) - probeTick; late >= p.threshold {
			p.mu.Lock()
			p.freezes = append(p.freezes, freeze{start: t0.Add(probeTick), cpu: cpu, late: late})
			p.mu.Unlock()
		}
	}
}

// probePriority is the probe threads' SCHED_FIFO priority.
const probePriority = 50

// pinThread keeps the calling thread (locked to its goroutine) on cpu.
func pinThread(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(0, &set)
}

// setFIFO schedules the calling thread SCHED_FIFO at priority.
func setFIFO(priority int) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(priority)}
	return unix.SchedSetAttr(0, &attr, 0)
}

// close stops the probe threads.
func (p *freezeProbe) close() {
	close(p.stop)
	p.wg.Wait()
}

// during is the freezes that overlapped [from, to].
func (p *freezeProbe) during(from, to time.Time) []freeze {
	p.mu.Lock()
	defer p.mu.Unlock()
	return overlapping(p.freezes, from, to)
}

func overlapping(fs []freeze, from, to time.Time) []freeze {
	var out []freeze
	for _, f := range fs {
		if f.start.Before(to) && f.start.Add(f.late).After(from) {
			out = append(out, f)
		}
	}
	return out
}

// describeFreezes is "3 (longest 100 ms on cpu 1)" or "none".
func describeFreezes(fs []freeze) string {
	if len(fs) == 0 {
		return "none"
	}
	longest := slices.MaxFunc(fs, func(a, b freeze) int { return int(a.late - b.late) })
	return fmt.Sprintf("%d (longest %d ms on cpu %d)", len(fs), longest.late.Milliseconds(), longest.cpu)
}

// frozenShare is the share of the CPU time of [from, to] on cpus CPUs that
// the freezes in fs took: each freeze's lateness, clipped to the window.
// A freeze stands for at least its lateness (the tick before it may have
// been frozen too), so the share is a lower bound.
func frozenShare(fs []freeze, from, to time.Time, cpus int) float64 {
	if !to.After(from) || cpus <= 0 {
		return 0
	}
	var lost time.Duration
	for _, f := range fs {
		s, e := f.start, f.start.Add(f.late)
		if s.Before(from) {
			s = from
		}
		if e.After(to) {
			e = to
		}
		if e.After(s) {
			lost += e.Sub(s)
		}
	}
	return float64(lost) / float64(to.Sub(from)*time.Duration(cpus))
}
