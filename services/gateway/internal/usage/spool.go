package usage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
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
	// write writes to the current file (tests make it fail like a full disk).
	write func(f *os.File, b []byte) (int, error)
}

// ErrSpoolFull is returned when the spool reached its size bound.
var ErrSpoolFull = errors.New("usage spool full")

// OpenSpool opens (creating) the spool directory.
func OpenSpool(dir string, maxBytes int64) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool dir: %w", err)
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, write: (*os.File).Write}
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

// Append writes one event line and syncs it to disk. A failed write (a
// full disk) is undone: the file is cut back to its last whole line, so
// the next line never continues a partial one, and reopened at the next
// Append. The caller counts the line lost.
func (s *Spool) Append(line []byte) error {
	buf := make([]byte, 0, len(line)+1)
	return s.append(append(append(buf, line...), '\n'))
}

// append writes buf (whole lines) and syncs it.
func (s *Spool) append(buf []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.size+int64(len(buf)) > s.maxBytes {
		return ErrSpoolFull
	}
	if s.f == nil {
		f, err := os.OpenFile(s.current(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("open spool: %w", err)
		}
		s.f = f
	}
	end, err := s.f.Seek(0, io.SeekEnd)
	if err != nil {
		_ = s.f.Close()
		s.f = nil
		return fmt.Errorf("spool: %w", err)
	}
	if _, err = s.write(s.f, buf); err != nil {
		err = fmt.Errorf("write spool: %w", err)
	} else if err = s.f.Sync(); err != nil {
		err = fmt.Errorf("sync spool: %w", err)
	}
	if err != nil {
		_ = s.f.Truncate(end) // drop the partial line, if any
		_ = s.f.Close()
		s.f = nil
		return err
	}
	s.size += int64(len(buf))
	return nil
}

// AppendLines writes several lines with one write and one sync (the
// journal's recovery at start); like Append, a failed write is undone
// whole.
func (s *Spool) AppendLines(lines [][]byte) error {
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	buf := make([]byte, 0, n)
	for _, l := range lines {
		buf = append(append(buf, l...), '\n')
	}
	return s.append(buf)
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

// maxSpoolLine bounds what Replay reads of one line: a longer one (a
// corrupt segment) is passed on cut to this length, and is then no event.
const maxSpoolLine = 8 << 20

// Replay seals the current file and sends every spooled line, oldest first,
// in groups of at most maxLines lines and maxBytes bytes (a group never
// spans two segments; a single longer line is a group of its own), removing
// each segment once all its groups were sent. Segments are read line by
// line, never whole, so replaying a spool of a gigabyte holds one group in
// memory. It stops at the first send error (the rest stays spooled; the
// failed segment is sent again whole next time). The lines are only valid
// during the send call. It returns the number of lines sent.
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
		n, size, err := replaySegment(p, maxLines, maxBytes, send)
		sent += n
		if err != nil {
			return sent, err
		}
		if err := os.Remove(p); err != nil {
			return sent, err
		}
		s.mu.Lock()
		s.size -= size
		s.mu.Unlock()
	}
	return sent, nil
}

// replaySegment sends the lines of one segment file in groups; it returns
// the lines sent and the file's size.
func replaySegment(path string, maxLines, maxBytes int, send func(lines [][]byte) error) (sent int, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	var group [][]byte
	groupBytes := 0
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		if err := send(group); err != nil {
			return err
		}
		sent += len(group)
		group, groupBytes = group[:0], 0
		return nil
	}
	for {
		line, rerr := readLine(r, maxSpoolLine)
		if len(line) > 0 {
			if len(group) > 0 && (len(group) == maxLines || groupBytes+1+len(line) > maxBytes) {
				if err := flush(); err != nil {
					return sent, 0, err
				}
			}
			group = append(group, line)
			groupBytes += len(line) + 1
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return sent, 0, rerr
		}
	}
	if err := flush(); err != nil {
		return sent, 0, err
	}
	return sent, fi.Size(), nil
}

// readLine reads one line without its newline; a line longer than max is
// returned cut to max bytes (the rest is skipped). io.EOF comes with the
// last line (possibly empty).
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if room := max - len(line); room > 0 {
			line = append(line, chunk[:min(len(chunk), room)]...)
		}
		switch err {
		case bufio.ErrBufferFull:
			continue
		case nil:
			return bytes.TrimSuffix(line, []byte{'\n'}), nil
		default:
			return bytes.TrimSuffix(line, []byte{'\n'}), err
		}
	}
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
