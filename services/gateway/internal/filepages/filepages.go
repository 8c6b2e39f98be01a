// Package filepages keeps the executable's read-only file pages in the
// process's resident set to the pages it uses. A Go binary's code and
// read-only data are mapped from its file and count in RSS once touched, so
// start-up alone (every package's initialisation, migrations, cache loads)
// leaves most of a large binary resident; and each later fault maps 64 KiB
// around it (the kernel's fault-around) from the page cache, which read-ahead
// filled with the whole file.
//
// Release undoes both once the process serves: it drops the pages of those
// mappings (clean copies of the file: MADV_DONTNEED on a private read-only
// file mapping is safe while no page of it is the process's own copy, and
// the pages still in use come back on their next use), turns read-ahead off
// for them (MADV_RANDOM; newer kernels honour it for the read-only data
// only), and drops the read-only data's file pages that nothing maps from
// the page cache (fadvise DONTNEED). Fault-around maps only pages that are
// in the page cache, so from then on a fault there maps its own page and
// the cached neighbours (in use by some process, or read by anyone), not
// 64 KiB.
package filepages

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Release drops the resident pages of the executable's read-only mappings,
// turns read-ahead off for them and drops the file pages of its read-only
// data from the page cache; it reports how many bytes those mappings
// spanned. Writable mappings (data, bss, heap) are never touched.
//
// The code's pages stay in the page cache: from Linux 6.16 on, a fault on an
// executable mapping reads ahead whatever its MADV_RANDOM (up to the
// device's read_ahead_kb, megabytes on some disks), so evicting the code
// would only read it back in large blocks. The read-only data (types,
// strings, the pc tables the GC reads) is as large, and there the advice
// holds on every kernel.
//
// Pages that another process maps (another replica started from the same
// file on this node) stay in the page cache, and fault-around maps those
// too: the resident set is then the pages this process uses plus those of
// its neighbours near them.
func Release() (spanned int64, err error) {
	ms, err := ownMappings()
	if err != nil {
		return 0, err
	}
	var data []mapping
	for _, m := range ms {
		if m.private {
			// Pages written since the file was mapped (relocations of a
			// PIE or externally linked binary, made read-only after;
			// debugger breakpoints): dropping them would bring back the
			// file's bytes under the running code.
			continue
		}
		for _, advice := range []int{unix.MADV_DONTNEED, unix.MADV_RANDOM} {
			if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), uintptr(advice)); e != 0 {
				return spanned, e
			}
		}
		spanned += int64(m.end - m.start)
		if !m.exec {
			data = append(data, m)
		}
	}
	return spanned, evict(data)
}

// evict drops the file pages of the mappings ms that no process maps from
// the page cache. Dirty pages cannot be dropped: a binary written moments
// ago (make run builds, then starts it) is written back first; for an
// image's file, which is clean, the sync has nothing to do.
func evict(ms []mapping) error {
	if len(ms) == 0 {
		return nil
	}
	f, err := os.Open("/proc/self/exe") // the file mapped, whatever its path now
	if err != nil {
		return err
	}
	defer f.Close()
	_ = unix.Fdatasync(int(f.Fd())) // best effort: fadvise drops whatever is clean
	for _, m := range ms {
		if err := unix.Fadvise(int(f.Fd()), int64(m.offset), int64(m.end-m.start), unix.FADV_DONTNEED); err != nil {
			return err
		}
	}
	return nil
}

// mapping is a read-only mapping of the executable.
type mapping struct {
	start, end, offset uint64
	exec               bool
	// private: some pages are the process's own copies, not the file's
	// (smaps' Anonymous above 0).
	private bool
}

// ownMappings lists the read-only mappings of this process's executable.
func ownMappings() ([]mapping, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readOnlyMappings(f, exe)
}

// readOnlyMappings reads /proc/self/smaps (r) for the read-only mappings of
// path, with whether each holds private copies.
func readOnlyMappings(r io.Reader, path string) ([]mapping, error) {
	var ms []mapping
	cur := -1 // ms's index of the mapping whose attributes follow, or -1
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		key, rest, _ := strings.Cut(line, " ")
		if !strings.HasSuffix(key, ":") { // a mapping's header line
			cur = -1
			if m, ok := readOnlyMapping(line, path); ok {
				ms = append(ms, m)
				cur = len(ms) - 1
			}
			continue
		}
		if key == "Anonymous:" && cur >= 0 {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			ms[cur].private = err != nil || kb > 0 // unreadable: leave it alone
		}
	}
	return ms, sc.Err()
}

// readOnlyMapping parses one /proc/self/maps line ("start-end perms offset
// dev inode path") and reports a mapping of path that is not writable.
func readOnlyMapping(line, path string) (mapping, bool) {
	f := strings.Fields(line)
	if len(f) < 6 || strings.Join(f[5:], " ") != path || len(f[1]) < 3 || f[1][1] == 'w' || f[1][0] != 'r' {
		return mapping{}, false
	}
	lo, hi, found := strings.Cut(f[0], "-")
	if !found {
		return mapping{}, false
	}
	s, err1 := strconv.ParseUint(lo, 16, 64)
	e, err2 := strconv.ParseUint(hi, 16, 64)
	off, err3 := strconv.ParseUint(f[2], 16, 64)
	if err1 != nil || err2 != nil || err3 != nil || e <= s {
		return mapping{}, false
	}
	return mapping{start: s, end: e, offset: off, exec: f[1][2] == 'x'}, true
}
