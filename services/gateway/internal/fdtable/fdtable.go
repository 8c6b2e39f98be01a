// Package fdtable sizes the process's file descriptor table ahead of need.
//
// Linux grows a process's descriptor table by doubling it when a new
// descriptor does not fit (64, 128, 256, …). In a multi-threaded process
// the old table is freed only after an RCU grace period, and the thread
// that opened the descriptor waits for it (expand_files →
// synchronize_rcu): under perf, the gateway's accept4 slept 20 ms there
// while a burst of connections arrived (docs/benchmarks.md, "The machine
// stands still"). Every doubling of a burst stalls the accept loop once;
// growing the table once at start, before there is traffic, moves those
// waits out of the requests' way. The table never shrinks; its cost is
// 8 bytes a slot of kernel memory (128 KiB for 16 384), not the process's
// resident set.
package fdtable

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Reserve grows the descriptor table to hold at least n descriptors, capped
// at the soft RLIMIT_NOFILE (a descriptor above it cannot be opened), and
// returns the table's size afterwards (0 when it cannot be read). It opens
// one descriptor at or above n-1 (F_DUPFD picks the lowest free one there,
// so no open descriptor is ever replaced) and closes it again.
func Reserve(n int) (int, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("fdtable: RLIMIT_NOFILE: %w", err)
	}
	if lim.Cur < uint64(n) {
		n = int(lim.Cur)
	}
	if n < 2 {
		return Size(), nil
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		return 0, fmt.Errorf("fdtable: %w", err)
	}
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, n-1)
	if err != nil {
		return Size(), fmt.Errorf("fdtable: descriptor %d: %w", n-1, err)
	}
	unix.Close(fd)
	return Size(), nil
}

// Size is the process's descriptor table size (FDSize in
// /proc/self/status), 0 when it cannot be read.
func Size() int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "FDSize:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
