package policy

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

type acHit struct{ pat, start, end int }

func naiveFind(pats []string, text string, fold bool) []acHit {
	var out []acHit
	lower := func(s string) string {
		b := []byte(s)
		for i := range b {
			b[i] = lowerASCII(b[i])
		}
		return string(b)
	}
	if fold {
		text = lower(text)
	}
	for end := 1; end <= len(text); end++ {
		for pi, p := range pats {
			if fold {
				p = lower(p)
			}
			if end >= len(p) && text[end-len(p):end] == p {
				out = append(out, acHit{pi, end - len(p), end})
			}
		}
	}
	return out
}

func TestAhoCorasickAgainstNaive(t *testing.T) {
	saved := denseLimit
	defer func() { denseLimit = saved }()
	r := rand.New(rand.NewPCG(7, 7))
	alpha := "abAB-é"
	for iter := 0; iter < 300; iter++ {
		var pats []string
		for n := 1 + r.IntN(12); n > 0; n-- {
			var b strings.Builder
			for l := 1 + r.IntN(5); l > 0; l-- {
				b.WriteByte(alpha[r.IntN(len(alpha))])
			}
			pats = append(pats, b.String())
		}
		var tb bytes.Buffer
		for l := r.IntN(200); l > 0; l-- {
			tb.WriteByte(alpha[r.IntN(len(alpha))])
		}
		text := tb.String()
		for _, fold := range []bool{false, true} {
			want := naiveFind(pats, text, fold)
			for _, limit := range []int{1 << 20, 0} { // dense, sparse
				denseLimit = limit
				m := newAC(pats, fold)
				if (m.dense == nil) != (limit == 0) {
					t.Fatal("representation not as forced")
				}
				var got []acHit
				m.scan([]byte(text), func(p, s, e int) bool { got = append(got, acHit{p, s, e}); return true })
				// same end order; within one end, order may differ
				slices.SortFunc(got, func(a, b acHit) int { return (a.end-b.end)*1000 + a.pat - b.pat })
				slices.SortFunc(want, func(a, b acHit) int { return (a.end-b.end)*1000 + a.pat - b.pat })
				if !slices.Equal(got, want) {
					t.Fatalf("fold=%v dense=%v pats=%q text=%q\n got %v\nwant %v", fold, limit > 0, pats, text, got, want)
				}
			}
		}
	}
}

func TestAhoCorasickStop(t *testing.T) {
	m := newAC([]string{"a"}, false)
	n := 0
	m.scan([]byte("aaaa"), func(int, int, int) bool { n++; return n < 2 })
	if n != 2 {
		t.Fatalf("scan did not stop: %d", n)
	}
}
