package filepages

import (
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestReadOnlyMapping(t *testing.T) {
	for _, tc := range []struct {
		line string
		want mapping
		ok   bool
	}{
		{"00400000-01284000 r-xp 00000000 fd:01 123 /bin/gw", mapping{start: 0x400000, end: 0x1284000, exec: true}, true},
		{"01284000-021d5000 r--p 00e84000 fd:01 123 /bin/gw", mapping{start: 0x1284000, end: 0x21d5000, offset: 0xe84000}, true},
		{"021d5000-022a7000 rw-p 01dd5000 fd:01 123 /bin/gw", mapping{}, false}, // data: written pages would be lost
		{"7f00-8f00 r-xp 00000000 fd:01 9 /usr/lib/libc.so.6", mapping{}, false},
		{"7f00-8f00 r--p 00000000 00:00 0", mapping{}, false},
		{"7f00-8f00 r--p 0000zz00 fd:01 123 /bin/gw", mapping{}, false},
		{"garbage", mapping{}, false},
	} {
		if m, ok := readOnlyMapping(tc.line, "/bin/gw"); ok != tc.ok || m != tc.want {
			t.Errorf("%q: %+v, %v; want %+v, %v", tc.line, m, ok, tc.want, tc.ok)
		}
	}
}

// TestReadOnlyMappingsPrivateCopies: a read-only mapping with pages of its
// own (a PIE's relocated data made read-only after, a breakpoint) is marked,
// so that Release leaves it alone.
func TestReadOnlyMappingsPrivateCopies(t *testing.T) {
	const smaps = `00400000-00543000 r-xp 00000000 fe:00 123                            /bin/gw
Size:               1292 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
00543000-006b9000 r--p 00143000 fe:00 123                            /bin/gw
Size:               1496 kB
Anonymous:           156 kB
VmFlags: rd mr mw me
006b9000-006dc000 r--p 002b9000 fe:00 123                            /bin/gw
Anonymous:             0 kB
006dc000-006fc000 rw-p 002dc000 fe:00 123                            /bin/gw
Anonymous:            20 kB
7f0000000000-7f0000021000 rw-p 00000000 00:00 0
Anonymous:           132 kB
`
	ms, err := readOnlyMappings(strings.NewReader(smaps), "/bin/gw")
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{
		{start: 0x400000, end: 0x543000, exec: true},
		{start: 0x543000, end: 0x6b9000, offset: 0x143000, private: true},
		{start: 0x6b9000, end: 0x6dc000, offset: 0x2b9000},
	}
	if len(ms) != len(want) {
		t.Fatalf("got %+v, want %+v", ms, want)
	}
	for i := range want {
		if ms[i] != want[i] {
			t.Errorf("mapping %d: %+v, want %+v", i, ms[i], want[i])
		}
	}
}

// rssFileKB is this process's RssFile.
func rssFileKB(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Skip("no RssFile")
	return 0
}

// TestReleaseKeepsRunning drops the test binary's own code pages and goes
// on running (they fault back in), with fewer file pages resident.
func TestReleaseKeepsRunning(t *testing.T) {
	before := rssFileKB(t)
	spanned, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFileKB(t)
	if spanned == 0 {
		t.Fatal("no read-only mapping of the executable found")
	}
	if after >= before {
		t.Errorf("RssFile %d kB before, %d kB after: nothing released", before, after)
	}
	t.Logf("RssFile %d → %d kB (%d kB of mappings)", before, after, spanned>>10)
	// Code runs on: a map, a string conversion, a closure.
	m := map[string]int{}
	for i := range 1000 {
		m[strconv.Itoa(i)] = i
	}
	if len(m) != 1000 {
		t.Fatal("map broken")
	}
}

// dataRanges lists the executable's read-only data mappings (not code: see
// Release).
func dataRanges(t *testing.T) [][2]uint64 {
	ms, err := ownMappings()
	if err != nil {
		t.Skipf("no mappings of the executable: %v", err)
	}
	var rs [][2]uint64
	for _, m := range ms {
		if !m.exec {
			rs = append(rs, [2]uint64{m.start, m.end})
		}
	}
	return rs
}

// windowPages is fault-around's reach: 16 pages, 64 KiB.
const windowPages = 16

// mapped reports which of the window's pages are in the process's page
// table (/proc/self/pagemap's present bit).
func mapped(t *testing.T, pm *os.File, addr uint64) [windowPages]bool {
	var b [windowPages * 8]byte
	if _, err := pm.ReadAt(b[:], int64(addr/pageSize*8)); err != nil {
		t.Fatal(err)
	}
	var r [windowPages]bool
	for i := range r {
		r[i] = binary.LittleEndian.Uint64(b[i*8:])&(1<<63) != 0
	}
	return r
}

// cached reports which of the window's pages are in the page cache.
func cached(t *testing.T, addr uint64) [windowPages]bool {
	var vec [windowPages]byte
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(addr), windowPages*pageSize, uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	var r [windowPages]bool
	for i, v := range vec {
		r[i] = v&1 != 0
	}
	return r
}

const pageSize = 4096

// TestReleaseMapsOnlyTouchedPages: after Release, a read of one page of the
// executable's read-only data that nothing has touched since maps that page
// alone (and the few the runtime touches meanwhile). Without MADV_RANDOM
// read-ahead caches its neighbours; without the page cache's eviction
// fault-around maps the 15 around it.
func TestReleaseMapsOnlyTouchedPages(t *testing.T) {
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Skip("no /proc/self/pagemap")
	}
	defer pm.Close()
	if os.Getpagesize() != pageSize {
		t.Skipf("pages of %d bytes: the windows below assume 4 KiB", os.Getpagesize())
	}
	if exe, err := os.Executable(); err == nil {
		var fs unix.Statfs_t
		if unix.Statfs(exe, &fs) == nil && (fs.Type == unix.TMPFS_MAGIC || fs.Type == unix.RAMFS_MAGIC) {
			t.Skipf("the test binary is on tmpfs (%s): its pages cannot leave the page cache", exe)
		}
	}
	if _, err := Release(); err != nil {
		t.Fatal(err)
	}
	// A 64 KiB window of which no page is mapped or cached, with an
	// untouched window on each side (read-ahead's reach is larger than
	// fault-around's).
	var target uint64
	for _, r := range dataRanges(t) {
		const span = windowPages * pageSize
		for a := (r[0] + span - 1) / span * span; a+3*span <= r[1] && target == 0; a += span {
			clear := true
			for w := a; w < a+3*span && clear; w += span {
				for i, m := range mapped(t, pm, w) {
					if m || cached(t, w)[i] {
						clear = false
						break
					}
				}
			}
			if clear {
				target = a + span
			}
		}
	}
	if target == 0 {
		t.Fatal("no untouched 192 KiB of read-only data after Release: the page cache kept the executable")
	}
	// One byte of the window's middle page, read by the kernel (a pipe
	// write copies from the address: the fault is the same as a load's).
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	page := target + windowPages/2*pageSize
	if _, _, e := unix.Syscall(unix.SYS_WRITE, w.Fd(), uintptr(page), 1); e != 0 {
		t.Fatal(e)
	}
	m, c := mapped(t, pm, target), cached(t, target)
	if !m[windowPages/2] || !c[windowPages/2] {
		t.Fatalf("the page read is not mapped (%v) or not cached (%v)", m[windowPages/2], c[windowPages/2])
	}
	nm, nc := 0, 0
	for i := range windowPages {
		if i != windowPages/2 {
			nm += b2i(m[i])
			nc += b2i(c[i])
		}
	}
	// The runtime runs on beside the test (the GC reads the pc tables,
	// which lie in these mappings): a few neighbours may be its own.
	if nm > 3 || nc > 3 {
		t.Errorf("reading one page mapped %d and cached %d of its 15 neighbours, want at most 3 (fault-around and read-ahead bring all 15)", nm, nc)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
