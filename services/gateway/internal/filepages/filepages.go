// Package filepages releases the executable's read-only file pages from the
// process's resident set. A Go binary's code and read-only data are mapped
// from its file; the kernel maps them in as they are touched (with
// fault-around, 64 KiB at a time), so start-up alone (every package's
// initialisation, migrations, cache loads) leaves most of a large binary
// resident. Those pages are clean copies of the file: dropping them is
// safe (MADV_DONTNEED on a private read-only file mapping), and the ones
// the process still uses come back from the page cache on their next use.
package filepages

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Release drops the resident pages of the executable's read-only mappings
// and reports how many bytes those mappings spanned. Writable mappings
// (data, bss, heap) are never touched.
func Release() (spanned int64, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		start, end, ok := readOnlyMapping(sc.Text(), exe)
		if !ok {
			continue
		}
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), syscall.MADV_DONTNEED); e != 0 {
			return spanned, e
		}
		spanned += int64(end - start)
	}
	return spanned, sc.Err()
}

// readOnlyMapping parses one /proc/self/maps line ("start-end perms offset
// dev inode path") and reports the range of a mapping of path that is not
// writable.
func readOnlyMapping(line, path string) (start, end uint64, ok bool) {
	f := strings.Fields(line)
	if len(f) < 6 || strings.Join(f[5:], " ") != path || len(f[1]) < 2 || f[1][1] == 'w' || f[1][0] != 'r' {
		return 0, 0, false
	}
	lo, hi, found := strings.Cut(f[0], "-")
	if !found {
		return 0, 0, false
	}
	s, err1 := strconv.ParseUint(lo, 16, 64)
	e, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || e <= s {
		return 0, 0, false
	}
	return s, e, true
}
