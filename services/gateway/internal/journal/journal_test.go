package journal

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

func open(t *testing.T, dir string, seg int, max int64) *Journal {
	t.Helper()
	j, err := Open(Options{Dir: dir, SegmentBytes: seg, MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// run starts j.Run until the returned stop is called or the test ends
// (Close, after stop, is the test's).
func run(t *testing.T, j *Journal) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); j.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func rec(i int) []byte {
	return []byte(fmt.Sprintf(`{"request_id":"req-%06d","pad":"%s"}`, i, strings.Repeat("x", i%300)))
}

func recoverAll(t *testing.T, dir string) []string {
	t.Helper()
	j := open(t, dir, 0, 0)
	defer j.Close()
	var got []string
	if _, err := j.Recover(func(rs [][]byte) error {
		for _, r := range rs {
			got = append(got, string(r))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// mustAppend appends r, waiting for Run when a burst took the spare
// before the next one was ready.
func mustAppend(t *testing.T, j *Journal, r []byte) Ref {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ref := j.Append(r); ref.Journaled() {
			return ref
		}
		if time.Now().After(deadline) {
			t.Fatalf("not journaled: %+v", j.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, segPrefix+"*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRecoverUnreleased: records never released come back, in order, from
// a journal closed with them pending; released ones do not once their
// segment is done; the recovered segments are removed.
func TestRecoverUnreleased(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, 64<<10, 0)
	stop := run(t, j)
	const n = 2000 // ~30 segments of 64 KiB
	var want []string
	for i := range n {
		r := mustAppend(t, j, rec(i))
		if i < n/2 {
			r.Release() // delivered
		} else {
			want = append(want, string(rec(i)))
		}
	}
	// The released first half's segments die (all but the one shared
	// with the second half).
	deadline := time.Now().Add(5 * time.Second)
	for j.Stats().Segments > int64(n/2/500+4) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	j.Close()
	got := recoverAll(t, dir)
	// Recovered: every unreleased record, in order, and at most the
	// released records sharing the first unreleased one's segment.
	if len(got) < len(want) {
		t.Fatalf("recovered %d records, want at least the %d unreleased", len(got), len(want))
	}
	tail := got[len(got)-len(want):]
	for i := range want {
		if tail[i] != want[i] {
			t.Fatalf("record %d: got %q, want %q", i, tail[i], want[i])
		}
	}
	if extra := len(got) - len(want); extra > 1000 {
		t.Fatalf("%d released records recovered: their segments were not removed", extra)
	}
	if files := segFiles(t, dir); len(files) != 0 {
		t.Fatalf("segments left after Recover and Close: %v", files)
	}
}

// TestReleasedSegmentsAreRemoved: once every record is released, a closed
// journal leaves no segment.
func TestReleasedSegmentsAreRemoved(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, 64<<10, 0)
	stop := run(t, j)
	var refs Refs
	for i := range 3000 {
		refs.Add(mustAppend(t, j, rec(i)))
	}
	if refs.Len() != 3000 || len(refs.segs) < 10 {
		t.Fatalf("refs: %d records in %d segments", refs.Len(), len(refs.segs))
	}
	refs.Release()
	stop()
	j.Close()
	if files := segFiles(t, dir); len(files) != 0 {
		t.Fatalf("segments left: %v", files)
	}
	if got := recoverAll(t, dir); len(got) != 0 {
		t.Fatalf("recovered %d released records", len(got))
	}
}

// TestBoundNeverBlocks: at the bound (two segments), Append returns at
// once without journaling and counts it; releasing makes room again.
func TestBoundNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, 64<<10, 128<<10)
	run(t, j)
	defer j.Close()
	var refs Refs
	skipped := 0
	for i := range 2000 {
		r := j.Append(rec(i))
		if !r.Journaled() {
			skipped++
		}
		refs.Add(r)
		time.Sleep(10 * time.Microsecond)
	}
	st := j.Stats()
	if skipped == 0 || st.Skipped[ReasonNoSegment] != int64(skipped) || st.Segments > 2 {
		t.Fatalf("%d skipped, stats %+v: want records refused at the bound of 2 segments", skipped, st)
	}
	refs.Release()
	deadline := time.Now().Add(5 * time.Second)
	for !j.Append(rec(1)).Journaled() {
		if time.Now().After(deadline) {
			t.Fatalf("no room after releasing: %+v", j.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFullDisk: segments that cannot be allocated (ENOSPC) leave records
// unjournaled and counted, and journaling resumes when there is room.
func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, 64<<10, 0)
	var full atomic.Bool
	full.Store(true)
	j.allocate = func(fd int, size int64) error {
		if full.Load() {
			return unix.ENOSPC
		}
		return unix.Fallocate(fd, 0, 0, size)
	}
	run(t, j)
	defer j.Close()
	journaled := 0
	for i := range 1000 {
		if j.Append(rec(i)).Journaled() {
			journaled++
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for j.Stats().Errors == 0 && time.Now().Before(deadline) { // Run tried to make the next segment
		time.Sleep(time.Millisecond)
	}
	st := j.Stats()
	// The spare made at Open takes some records; then none.
	if st.Skipped[ReasonNoSegment] == 0 || st.Errors == 0 || journaled == 1000 {
		t.Fatalf("disk full: %d journaled, stats %+v", journaled, st)
	}
	if st.Segments != 1 { // the one made at Open
		t.Fatalf("%d segments while the disk is full", st.Segments)
	}
	full.Store(false)
	deadline = time.Now().Add(5 * time.Second)
	for !j.Append(rec(1)).Journaled() {
		if time.Now().After(deadline) {
			t.Fatalf("journal did not resume: %+v", j.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCutSegmentDoesNotCrash: a segment file cut underneath (the mapping
// then raises SIGBUS) costs the record, not the process.
func TestCutSegmentDoesNotCrash(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, 64<<10, 0)
	run(t, j)
	defer j.Close()
	if !j.Append(rec(0)).Journaled() {
		t.Fatal("first record not journaled")
	}
	files := segFiles(t, dir)
	for _, f := range files {
		if err := os.Truncate(f, 0); err != nil {
			t.Fatal(err)
		}
	}
	var faulted bool
	for i := range 100 {
		if r := j.Append(rec(i)); !r.Journaled() {
			faulted = true
		}
	}
	if st := j.Stats(); !faulted || st.Skipped[ReasonFault] == 0 {
		t.Fatalf("stats %+v: want a counted fault", st)
	}
}

// TestTornRecordEndsSegment: a record whose CRC does not match (what a
// machine crash may leave) ends its segment's recovery; the ones before it
// come back.
func TestTornRecordEndsSegment(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, 64<<10, 0)
	for i := range 10 {
		j.Append(rec(i))
	}
	j.Close()
	files := segFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("segments %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt the payload of the 6th record.
	off := fileHeader
	for i := range 5 {
		off += recordSize(len(rec(i)))
	}
	b[off+recHeader+3] ^= 0xff
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	got := recoverAll(t, dir)
	if len(got) != 5 || got[4] != string(rec(4)) {
		t.Fatalf("recovered %d records (%v), want the 5 before the torn one", len(got), got)
	}
}

// TestOneProcessPerDir: a second journal on a locked directory is refused.
func TestOneProcessPerDir(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, 0, 0)
	defer j.Close()
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v, want in use", err)
	}
}

// TestUnwritableDir: a directory that cannot be created is an error of
// Open (the caller runs without a journal), never a crash.
func TestUnwritableDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: filepath.Join(f, "journal")}); err == nil {
		t.Fatal("Open under a regular file succeeded")
	}
	var j *Journal // a nil journal journals nothing
	if r := j.Append([]byte("x")); r.Journaled() {
		t.Fatal("nil journal journaled")
	}
}

// TestAppendAllocs: Append allocates nothing.
func TestAppendAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	j := open(t, t.TempDir(), 0, 0)
	run(t, j)
	defer j.Close()
	r := rec(7)
	if n := testing.AllocsPerRun(1000, func() { j.Append(r).Release() }); n != 0 {
		t.Fatalf("Append: %v allocations", n)
	}
}

// TestKill9 kills (SIGKILL) a child process appending records and
// releasing every other one, and recovers every unreleased record the
// child had appended: the kernel kept the mapping's pages.
func TestKill9(t *testing.T) {
	if os.Getenv("JOURNAL_KILL_CHILD") != "" {
		return // the child is TestKill9Child
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestKill9Child$")
	cmd.Env = append(os.Environ(), "JOURNAL_KILL_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child prints "a <i>" once record i is appended; it releases
	// the records of every other thousand (so that whole segments die).
	sc := bufio.NewScanner(out)
	var unreleased []int
	n := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || f[0] != "a" {
			continue
		}
		i, _ := strconv.Atoi(f[1])
		if (i/1000)%2 == 1 {
			unreleased = append(unreleased, i)
		}
		if n++; n == 20000 {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if n < 20000 {
		t.Fatalf("child appended only %d records", n)
	}
	got := map[string]int{}
	for _, r := range recoverAll(t, dir) {
		got[r]++
	}
	for _, i := range unreleased {
		if got[string(rec(i))] != 1 {
			t.Fatalf("record %d (appended, unreleased, reported before the kill) recovered %d times", i, got[string(rec(i))])
		}
	}
	if len(got) >= n {
		t.Fatalf("all %d records recovered: the released segments were not removed", len(got))
	}
	t.Logf("%d records reported appended before the kill; %d unreleased, all recovered; %d recovered in all", n, len(unreleased), len(got))
}

// TestKill9Child is TestKill9's child: it appends until killed.
func TestKill9Child(t *testing.T) {
	dir := os.Getenv("JOURNAL_KILL_CHILD")
	if dir == "" {
		t.Skip("run by TestKill9")
	}
	j, err := Open(Options{Dir: dir, SegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	run(t, j)
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		r := j.Append(rec(i))
		for !r.Journaled() {
			time.Sleep(100 * time.Microsecond)
			r = j.Append(rec(i))
		}
		if (i/1000)%2 == 0 {
			r.Release()
		}
		fmt.Fprintf(w, "a %d\n", i)
		if i%64 == 0 {
			w.Flush()
		}
	}
}

// BenchmarkAppend: one record of a typical usage event's size, appended
// and released.
func BenchmarkAppend(b *testing.B) {
	j, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); j.Run(ctx) }()
	r := []byte(strings.Repeat("e", 600))
	b.ReportAllocs()
	b.SetBytes(int64(len(r)))
	for b.Loop() {
		ref := j.Append(r)
		for !ref.Journaled() { // the next segment is not ready yet
			ref = j.Append(r)
		}
		ref.Release()
	}
	b.StopTimer()
	cancel()
	<-done
	j.Close()
}

// TestCollectors: the series register (one family per name, reason-labelled
// skips) for an open and a missing journal.
func TestCollectors(t *testing.T) {
	for _, j := range []*Journal{nil, open(t, t.TempDir(), 0, 0)} {
		reg := prometheus.NewRegistry()
		reg.MustRegister(Collectors(j)...)
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(fams) != 6 {
			t.Fatalf("%d families", len(fams))
		}
		j.Close()
	}
}
