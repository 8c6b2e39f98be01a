package filepages

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestReadOnlyMapping(t *testing.T) {
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{"00400000-01284000 r-xp 00000000 fd:01 123 /bin/gw", true},
		{"01284000-021d5000 r--p 00e84000 fd:01 123 /bin/gw", true},
		{"021d5000-022a7000 rw-p 01dd5000 fd:01 123 /bin/gw", false}, // data: written pages would be lost
		{"7f00-8f00 r-xp 00000000 fd:01 9 /usr/lib/libc.so.6", false},
		{"7f00-8f00 r--p 00000000 00:00 0", false},
		{"garbage", false},
	} {
		if _, _, ok := readOnlyMapping(tc.line, "/bin/gw"); ok != tc.ok {
			t.Errorf("%q: ok=%v, want %v", tc.line, ok, tc.ok)
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
