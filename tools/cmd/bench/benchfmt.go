package main

import (
	"io"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// benchLine is one result line of go test -bench: the name with its
// Benchmark prefix and sub-benchmarks but without the -GOMAXPROCS suffix,
// and its values by unit as printed (ns/op, B/op, events/s, ...).
type benchLine struct {
	name   string
	values map[string]float64
}

// readBench parses the benchmark results in go test output (the standard
// benchmark format; other lines are skipped).
func readBench(r io.Reader) ([]benchLine, error) {
	br := benchfmt.NewReader(r, "go test")
	var out []benchLine
	for br.Scan() {
		res, ok := br.Result().(*benchfmt.Result)
		if !ok {
			continue
		}
		base, parts := res.Name.Parts()
		name := string(base)
		for _, p := range parts {
			if !strings.HasPrefix(string(p), "-") {
				name += string(p)
			}
		}
		if !strings.HasPrefix(name, "Benchmark") {
			name = "Benchmark" + name
		}
		l := benchLine{name: name, values: map[string]float64{}}
		for _, v := range res.Values {
			if v.OrigUnit != "" {
				l.values[v.OrigUnit] = v.OrigValue
			} else {
				l.values[v.Unit] = v.Value
			}
		}
		out = append(out, l)
	}
	return out, br.Err()
}
