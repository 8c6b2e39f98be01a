package policy

import (
	"strings"
	"testing"
)

func BenchmarkACScan(b *testing.B) {
	var sb strings.Builder
	for sb.Len() < 4000 {
		sb.WriteString(benchProse)
	}
	text := []byte(sb.String())
	kw := newAC([]string{"project falcon", "codename", "acme-internal", "blueprint", "merger", "layoff", "salary band", "roadmap q3", "confidential", "do not distribute", "tiger team", "zeta"}, true)
	kwcs := newAC([]string{"TOPSECRET", "NOFORN", "EYES ONLY"}, false)
	for _, c := range []struct {
		name string
		m    *acMatcher
	}{{"kw", kw}, {"kwcs", kwcs}, {"lexicon", defaultLexicon.ac}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			n := 0
			for b.Loop() {
				c.m.scan(text, func(p, s, e int) bool { n++; return true })
			}
			b.ReportMetric(float64(len(c.m.outOff)), "states")
			b.ReportMetric(float64(c.m.nclass), "classes")
		})
	}
}
