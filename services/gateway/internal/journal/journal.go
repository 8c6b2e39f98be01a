// Package journal keeps records (the proxy's usage events, encoded) in
// memory-mapped, append-only segment files until their owner releases
// them, so that a process killed outright (SIGKILL, an OOM kill, a crash)
// leaves every record it had not released on disk for the next start.
//
// Appending is a memcpy into a shared mapping under a mutex: no system
// call, no page fault (segments are created, sized and touched ahead by
// Run's goroutine). The kernel owns the dirty pages of a MAP_SHARED
// mapping, so they outlive the process and are written back to the file
// by the kernel; they do not outlive the machine (no msync: a power loss
// or kernel crash can lose the journal's last seconds — the spool, which
// fsyncs, is for NATS outages; the journal is for process deaths).
//
// A segment is removed once it is sealed (full, or closed at shutdown) and
// every record in it was released. Recover, at start, hands the records of
// the segments a previous process left to a callback (the publisher's
// spool) and removes them. Records may be recovered that the previous
// process had already delivered: consumers must be idempotent (usage
// events are, on their request id).
//
// A journal that cannot write (a full disk, an unwritable directory, the
// bound reached) never blocks nor fails the caller: Append returns an
// empty Ref and counts the record as not journaled.
package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults: segments of 1 MiB (a usage event is about 0.5 to 1 KiB; the
// largest one NATS accepts by default, 1 MiB, still fits), at most 64 MiB
// of them on disk.
const (
	DefaultSegmentBytes = 1 << 20
	DefaultMaxBytes     = 64 << 20
	minSegmentBytes     = 64 << 10
)

// Options configure Open.
type Options struct {
	// Dir holds the segment files (created if missing) and a lock file:
	// one process per directory.
	Dir string
	// SegmentBytes is the size of a segment file (DefaultSegmentBytes when
	// 0), a multiple of the page size; a record larger than a segment is
	// not journaled.
	SegmentBytes int
	// MaxBytes bounds the segment files on disk (DefaultMaxBytes when 0);
	// at the bound, records are not journaled until segments are released.
	MaxBytes int64
	Log      *slog.Logger
}

// Reasons a record was not journaled.
const (
	ReasonTooLarge  = "too_large"  // larger than a segment
	ReasonNoSegment = "no_segment" // the bound is reached, or segments cannot be created (disk full, unwritable)
	ReasonFault     = "fault"      // writing to the mapping faulted (the file was cut underneath)
	ReasonClosed    = "closed"     // after Close
)

var reasons = []string{ReasonTooLarge, ReasonNoSegment, ReasonFault, ReasonClosed}

// Journal is the set of segments of one process. Its methods are safe for
// concurrent use; a nil *Journal journals nothing (Append returns an empty
// Ref).
type Journal struct {
	dir      string
	segBytes int
	maxSegs  int64
	log      *slog.Logger
	lock     *os.File // flock'd: one process per directory

	mu     sync.Mutex
	cur    *segment // being appended to
	spare  *segment // created ahead, becomes cur when cur is full
	closed bool

	seq   atomic.Uint64 // last segment number used
	live  atomic.Int64  // segment files of this process on disk
	old   []string      // segments a previous process left, for Recover
	wake  chan struct{} // Run: a spare was taken, or a segment died
	deadM sync.Mutex
	dead  []*segment // released and sealed: to unmap and remove

	// allocate reserves a new segment file's blocks (tests make it fail
	// like a full disk).
	allocate func(fd int, size int64) error

	appended, recovered, errs atomic.Int64
	skipped                   [4]atomic.Int64 // by reasons' index
	lastSkipLog, lastErrLog   atomic.Int64    // unix ns
}

// segment is one mapped file.
type segment struct {
	j    *Journal
	path string
	data []byte
	off  int // next record's offset; guarded by j.mu
	// pending counts the records not released, plus one while the
	// segment is current (so it cannot die while being appended to).
	pending atomic.Int64
}

// Ref is a journaled record's handle; the zero Ref (not journaled) is
// valid and releases nothing.
type Ref struct{ s *segment }

// Release says the record is delivered (or durably elsewhere): once every
// record of a sealed segment is released, the segment is removed. Call it
// once per Ref.
func (r Ref) Release() {
	if r.s != nil {
		r.s.release(1)
	}
}

// Journaled reports whether the record was journaled.
func (r Ref) Journaled() bool { return r.s != nil }

// Refs gathers the Refs of several records (a batch) to release them
// together; consecutive Refs of one segment take one entry.
type Refs struct{ segs []refCount }

type refCount struct {
	s *segment
	n int64
}

// Add adds r (a no-op for the zero Ref).
func (rs *Refs) Add(r Ref) {
	if r.s == nil {
		return
	}
	if n := len(rs.segs); n > 0 && rs.segs[n-1].s == r.s {
		rs.segs[n-1].n++
		return
	}
	rs.segs = append(rs.segs, refCount{r.s, 1})
}

// Release releases every Ref added.
func (rs Refs) Release() {
	for _, c := range rs.segs {
		c.s.release(c.n)
	}
}

// Len is the number of journaled records added.
func (rs Refs) Len() int64 {
	var n int64
	for _, c := range rs.segs {
		n += c.n
	}
	return n
}

func (s *segment) release(n int64) {
	if s.pending.Add(-n) == 0 {
		s.j.bury(s)
	}
}

const (
	segPrefix = "usage-"
	segSuffix = ".journal"
)

// Open opens (creating) the journal directory, locks it, notes the
// segments a previous process left (see Recover) and creates the first
// segment. An error means the directory cannot be used at all; a first
// segment that cannot be created (a full disk) is only logged: Run tries
// again.
func Open(o Options) (*Journal, error) {
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	page := os.Getpagesize()
	seg := max(o.SegmentBytes, minSegmentBytes)
	seg = (seg + page - 1) / page * page
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(o.Dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("journal dir %s is in use by another process", o.Dir)
		}
		return nil, fmt.Errorf("journal lock: %w", err)
	}
	j := &Journal{dir: o.Dir, segBytes: seg, maxSegs: max(o.MaxBytes/int64(seg), 2), log: o.Log, lock: lock,
		wake: make(chan struct{}, 1), allocate: func(fd int, size int64) error { return unix.Fallocate(fd, 0, 0, size) }}
	ents, err := os.ReadDir(o.Dir)
	if err != nil {
		j.unlock()
		return nil, fmt.Errorf("journal dir: %w", err)
	}
	var last uint64
	for _, e := range ents {
		if n, ok := segNumber(e.Name()); ok {
			j.old = append(j.old, filepath.Join(o.Dir, e.Name()))
			last = max(last, n)
		}
	}
	slices.Sort(j.old) // zero-padded numbers: oldest first
	j.seq.Store(last)
	// A directory where no file can be created is unusable; a full disk
	// is not (Run tries again).
	if err := j.prepare(); err != nil && (errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS)) {
		j.unlock()
		return nil, fmt.Errorf("journal dir %s is not writable: %w", o.Dir, err)
	}
	return j, nil
}

// segNumber parses usage-<n>.journal.
func segNumber(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, segPrefix)
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, segSuffix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// Dir is the journal's directory.
func (j *Journal) Dir() string { return j.dir }

// SegmentBytes is the size of a segment file.
func (j *Journal) SegmentBytes() int { return j.segBytes }

// MaxRecord is the largest record a segment holds.
func (j *Journal) MaxRecord() int { return j.segBytes - fileHeader - recHeader }

// Append copies rec into the current segment and returns its Ref, to
// Release once the record is delivered. It never blocks on I/O: when no
// segment has room (the bound, a full disk) or the write faults, it
// returns the zero Ref and counts the record as not journaled.
func (j *Journal) Append(rec []byte) Ref {
	if j == nil {
		return Ref{}
	}
	n := recordSize(len(rec))
	if n > j.segBytes-fileHeader {
		j.skip(ReasonTooLarge)
		return Ref{}
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		j.skip(ReasonClosed)
		return Ref{}
	}
	s := j.cur
	if s == nil || s.off+n > len(s.data) {
		if s = j.rotate(); s == nil {
			j.mu.Unlock()
			j.skip(ReasonNoSegment)
			return Ref{}
		}
	}
	if !putRecord(s.data[s.off:s.off+n], rec) {
		// The mapping faulted (the file was cut by someone else): this
		// segment is done; the next record gets a fresh one.
		j.cur = nil
		j.mu.Unlock()
		s.release(1)
		j.skip(ReasonFault)
		j.fail("usage journal segment faulted; abandoned", s.path, nil)
		return Ref{}
	}
	s.off += n
	s.pending.Add(1)
	j.mu.Unlock()
	j.appended.Add(1)
	return Ref{s}
}

// rotate seals the current segment and makes the spare current (nil when
// there is none); j.mu is held.
func (j *Journal) rotate() *segment {
	if c := j.cur; c != nil {
		j.cur = nil
		c.release(1) // sealed: it dies with its last record
	}
	s := j.spare
	j.spare = nil
	if s != nil {
		s.pending.Store(1)
		j.cur = s
	}
	j.poke()
	return s
}

func (j *Journal) poke() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// bury queues s for removal by Run (never on the appending goroutine: it
// is a munmap and an unlink).
func (j *Journal) bury(s *segment) {
	j.deadM.Lock()
	j.dead = append(j.dead, s)
	j.deadM.Unlock()
	j.poke()
}

// skip counts a record not journaled and says why, at most every 10 s.
func (j *Journal) skip(reason string) {
	i := slices.Index(reasons, reason)
	j.skipped[i].Add(1)
	if now := time.Now().UnixNano(); now-j.lastSkipLog.Load() > int64(10*time.Second) {
		j.lastSkipLog.Store(now)
		j.log.Warn("usage events not journaled (a kill -9 now would lose them)", "reason", reason, "dir", j.dir,
			"segments", j.live.Load(), "max_segments", j.maxSegs)
	}
}

// fail counts an error of the journal's own work and logs it, at most
// every 10 s.
func (j *Journal) fail(msg, path string, err error) {
	j.errs.Add(1)
	if now := time.Now().UnixNano(); now-j.lastErrLog.Load() > int64(10*time.Second) {
		j.lastErrLog.Store(now)
		j.log.Error(msg, "path", path, "err", err)
	}
}

// Close stops journaling, removes the segments whose records were all
// released, and leaves the others (unmapped) for the next start's
// Recover. Records appended later are not journaled.
func (j *Journal) Close() error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	if c := j.cur; c != nil {
		j.cur = nil
		c.release(1)
	}
	spare := j.spare
	j.spare = nil
	j.mu.Unlock()
	if spare != nil {
		j.remove(spare)
	}
	j.collect()
	j.unlock()
	return nil
}

func (j *Journal) unlock() {
	_ = unix.Flock(int(j.lock.Fd()), unix.LOCK_UN)
	_ = j.lock.Close()
}

// Stats are the journal's counters.
type Stats struct {
	Appended  int64            // records journaled
	Skipped   map[string]int64 // records not journaled, by reason
	Recovered int64            // records of previous processes handed to Recover's callback
	Errors    int64            // segments that could not be created, removed or read
	Segments  int64            // segment files of this process on disk
}

// Stats reports the counters.
func (j *Journal) Stats() Stats {
	st := Stats{Appended: j.appended.Load(), Recovered: j.recovered.Load(), Errors: j.errs.Load(), Segments: j.live.Load(),
		Skipped: map[string]int64{}}
	for i, r := range reasons {
		st.Skipped[r] = j.skipped[i].Load()
	}
	return st
}
