package fdtable

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReserveGrowsTheTable(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	want := 1 << 12
	if lim.Cur < uint64(want) {
		t.Skipf("soft RLIMIT_NOFILE %d is under %d", lim.Cur, want)
	}
	before := Size()
	if before == 0 {
		t.Skip("no FDSize in /proc/self/status")
	}
	if before >= want {
		t.Skipf("the table already holds %d descriptors", before)
	}
	got, err := Reserve(want)
	if err != nil {
		t.Fatal(err)
	}
	if got < want || Size() < want {
		t.Fatalf("table size %d after Reserve(%d) (before: %d), want at least %d", got, want, before, want)
	}
	// The descriptor Reserve opened is closed again: the next one opened
	// is a low one.
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Fd() >= uintptr(want-1) {
		t.Fatalf("next descriptor %d: Reserve left its descriptor open", f.Fd())
	}
}

func TestReserveStopsAtTheLimit(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur > 1<<20 {
		t.Skipf("soft RLIMIT_NOFILE %d: asking for more would allocate a huge table", lim.Cur)
	}
	// Asking for more than the limit is not an error: the table grows to
	// the limit's size.
	got, err := Reserve(int(lim.Cur) * 4)
	if err != nil {
		t.Fatal(err)
	}
	if got < int(lim.Cur) {
		t.Fatalf("table size %d, want at least the limit %d", got, lim.Cur)
	}
}
