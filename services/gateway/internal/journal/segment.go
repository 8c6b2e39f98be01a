package journal

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The segment file format: an 8-byte magic, then records, each a 4-byte
// length (native byte order), a 4-byte CRC-32C of the payload, the
// payload, and zero padding to 8 bytes. A length of 0 ends the segment.
// The length is stored last (atomically): a record cut by the process's
// death has length 0 and ends the segment, and nothing follows it (appends
// are serialised). The CRC guards against what a machine crash may leave
// (pages written back in any order); a record that fails it ends the
// segment too.
const (
	fileMagic  = "TPJRNL01"
	fileHeader = len(fileMagic)
	recHeader  = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordSize is the bytes a record of n payload bytes takes.
func recordSize(n int) int { return (recHeader + n + 7) &^ 7 }

// putRecord writes rec into dst (recordSize(len(rec)) bytes of a mapping).
// It reports false if the write faulted: the mapping's file was cut
// underneath (SIGBUS), which would otherwise kill the process.
func putRecord(dst, rec []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	copy(dst[recHeader:], rec)
	*(*uint32)(unsafe.Pointer(&dst[4])) = crc32.Checksum(rec, castagnoli)
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&dst[0])), uint32(len(rec)))
	return true
}

// records parses a segment's bytes: the records up to the end mark or the
// first invalid one.
func records(data []byte) [][]byte {
	if len(data) < fileHeader || string(data[:fileHeader]) != fileMagic {
		return nil
	}
	var out [][]byte
	for off := fileHeader; off+recHeader <= len(data); {
		n := int(*(*uint32)(unsafe.Pointer(&data[off])))
		if n == 0 || off+recHeader+n > len(data) {
			break
		}
		rec := data[off+recHeader : off+recHeader+n]
		if *(*uint32)(unsafe.Pointer(&data[off+4])) != crc32.Checksum(rec, castagnoli) {
			break
		}
		out = append(out, rec)
		off += recordSize(n)
	}
	return out
}

// Run creates segments ahead of Append and removes the released ones
// until ctx ends. Call Close after it returns.
func (j *Journal) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second) // retries after a failure (a full disk)
	defer tick.Stop()
	for {
		j.collect()
		_ = j.prepare()
		select {
		case <-ctx.Done():
			return
		case <-j.wake:
		case <-tick.C:
		}
	}
}

// prepare creates the spare segment unless there is one, the journal is
// closed, or the bound is reached.
func (j *Journal) prepare() error {
	j.mu.Lock()
	need := j.spare == nil && !j.closed
	j.mu.Unlock()
	if !need || j.live.Load() >= j.maxSegs {
		return nil
	}
	s, err := j.create()
	if err != nil {
		j.fail("usage journal: cannot create a segment", s.path, err)
		return err
	}
	j.mu.Lock()
	if j.closed || j.spare != nil {
		j.mu.Unlock()
		j.remove(s)
		return nil
	}
	j.spare = s
	j.mu.Unlock()
	return nil
}

// create makes a segment file of j.segBytes with its blocks allocated
// (fallocate: no write into the mapping can then meet a full disk), maps
// it, and writes to every page once so that Append never takes a page
// fault (a write fault on a shared file mapping enters the filesystem).
func (j *Journal) create() (*segment, error) {
	s := &segment{j: j, path: filepath.Join(j.dir, fmt.Sprintf("%s%020d%s", segPrefix, j.seq.Add(1), segSuffix))}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return s, err
	}
	defer f.Close() // the mapping stays
	fail := func(err error) (*segment, error) {
		_ = os.Remove(s.path)
		return s, err
	}
	if err := j.allocate(int(f.Fd()), int64(j.segBytes)); err != nil {
		if !errors.Is(err, unix.EOPNOTSUPP) {
			return fail(fmt.Errorf("fallocate: %w", err))
		}
		// No fallocate here: allocate by writing zeros.
		if _, err := f.WriteAt(make([]byte, j.segBytes), 0); err != nil {
			return fail(err)
		}
	}
	data, err := unix.Mmap(int(f.Fd()), 0, j.segBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail(fmt.Errorf("mmap: %w", err))
	}
	if !touch(data) {
		_ = unix.Munmap(data)
		return fail(errors.New("segment mapping faulted while touched (no room on the filesystem?)"))
	}
	s.data = data
	s.off = fileHeader
	j.live.Add(1)
	return s, nil
}

// touch writes the magic and a zero into every page of a new segment.
func touch(data []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	page := os.Getpagesize()
	for i := 0; i < len(data); i += page {
		data[i] = 0
	}
	copy(data, fileMagic)
	return true
}

// remove unmaps s and deletes its file.
func (j *Journal) remove(s *segment) {
	if s.data != nil {
		if err := unix.Munmap(s.data); err != nil {
			j.fail("usage journal: munmap", s.path, err)
		}
		s.data = nil
		j.live.Add(-1)
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		j.fail("usage journal: cannot remove a released segment", s.path, err)
	}
}

// collect removes the segments buried since the last call.
func (j *Journal) collect() {
	j.deadM.Lock()
	dead := j.dead
	j.dead = nil
	j.deadM.Unlock()
	for _, s := range dead {
		j.remove(s)
	}
}

// Recover hands the records of each segment a previous process left (in
// the order they were appended) to fn, and removes the segment once fn
// returned nil for it. It stops at fn's first error (that segment and the
// later ones stay, for the next Recover). It returns the records handed
// over. The records are only valid during the call.
func (j *Journal) Recover(fn func(records [][]byte) error) (int, error) {
	n := 0
	for len(j.old) > 0 {
		p := j.old[0]
		data, err := os.ReadFile(p)
		if err != nil {
			j.errs.Add(1)
			return n, fmt.Errorf("read journal segment: %w", err)
		}
		if recs := records(data); len(recs) > 0 {
			if err := fn(recs); err != nil {
				return n, err
			}
			n += len(recs)
			j.recovered.Add(int64(len(recs)))
		}
		if err := os.Remove(p); err != nil {
			j.errs.Add(1)
			return n, fmt.Errorf("remove recovered journal segment: %w", err)
		}
		j.old = j.old[1:]
	}
	return n, nil
}
