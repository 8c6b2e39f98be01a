package usage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Spool is a bounded append-only file of events waiting for NATS. Each line
// is one JSON event. Replay works on sealed segments so appends continue
// while a replay runs; a crash mid-replay re-sends a segment, which the
// stream's msg-id dedup and the ingester's idempotent insert absorb.
type Spool struct {
	dir      string
	maxBytes int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

// ErrSpoolFull is returned when the spool reached its size bound.
var ErrSpoolFull = errors.New("usage spool full")

// OpenSpool opens (creating) the spool directory.
func OpenSpool(dir string, maxBytes int64) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool dir: %w", err)
	}
	s := &Spool{dir: dir, maxBytes: maxBytes}
	segs, err := s.segments()
	if err != nil {
		return nil, err
	}
	for _, p := range segs {
		if fi, err := os.Stat(p); err == nil {
			s.size += fi.Size()
		}
	}
	return s, nil
}

func (s *Spool) current() string { return filepath.Join(s.dir, "current.jsonl") }

// Append writes one event line and syncs it to disk.
func (s *Spool) Append(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.size+int64(len(line))+1 > s.maxBytes {
		return ErrSpoolFull
	}
	if s.f == nil {
		f, err := os.OpenFile(s.current(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("open spool: %w", err)
		}
		s.f = f
	}
	buf := make([]byte, 0, len(line)+1)
	buf = append(append(buf, line...), '\n')
	if _, err := s.f.Write(buf); err != nil {
		return fmt.Errorf("write spool: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync spool: %w", err)
	}
	s.size += int64(len(buf))
	return nil
}

// Empty reports whether nothing is spooled.
func (s *Spool) Empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size == 0
}

// seal closes the current file and renames it to a numbered segment.
func (s *Spool) seal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
	if _, err := os.Stat(s.current()); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	name := filepath.Join(s.dir, fmt.Sprintf("segment-%020d.jsonl", time.Now().UnixNano()))
	return os.Rename(s.current(), name)
}

func (s *Spool) segments() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "segment-") || e.Name() == "current.jsonl" {
			out = append(out, filepath.Join(s.dir, e.Name()))
		}
	}
	sort.Strings(out) // segment-* sort before current.jsonl
	return out, nil
}

// Replay seals the current file and sends every spooled line, oldest first,
// in groups of at most maxLines lines and maxBytes bytes (a group never
// spans two segments; a single longer line is a group of its own), removing
// each segment once all its groups were sent. It stops at the first send
// error (the rest stays spooled; the failed segment is sent again whole next
// time). The lines are only valid during the send call. It returns the
// number of lines sent.
func (s *Spool) Replay(maxLines, maxBytes int, send func(lines [][]byte) error) (int, error) {
	if err := s.seal(); err != nil {
		return 0, err
	}
	segs, err := s.segments()
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, p := range segs {
		if filepath.Base(p) == "current.jsonl" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return sent, err
		}
		var group [][]byte
		size := 0
		flush := func() error {
			if len(group) == 0 {
				return nil
			}
			if err := send(group); err != nil {
				return err
			}
			sent += len(group)
			group, size = group[:0], 0
			return nil
		}
		for rest := data; len(rest) > 0; {
			line := rest
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				line, rest = rest[:i], rest[i+1:]
			} else {
				rest = nil
			}
			if len(line) == 0 {
				continue
			}
			if len(group) > 0 && (len(group) == maxLines || size+1+len(line) > maxBytes) {
				if err := flush(); err != nil {
					return sent, err
				}
			}
			group = append(group, line)
			size += len(line) + 1
		}
		if err := flush(); err != nil {
			return sent, err
		}
		if err := os.Remove(p); err != nil {
			return sent, err
		}
		s.mu.Lock()
		s.size -= int64(len(data))
		s.mu.Unlock()
	}
	return sent, nil
}

// Close closes the open file.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		err := s.f.Close()
		s.f = nil
		return err
	}
	return nil
}
