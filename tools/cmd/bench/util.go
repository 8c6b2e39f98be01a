package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

func sortStrings(s []string) { slices.Sort(s) }

// median of xs (the mean of the two middle values for an even count); NaN
// for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// num formats x rounded to d decimals, without trailing zeros ("–" for
// NaN): 0.189, 500, 56020.
func num(x float64, d int) string {
	if math.IsNaN(x) {
		return "–"
	}
	p := math.Pow(10, float64(d))
	return strconv.FormatFloat(math.Round(x*p)/p, 'f', -1, 64)
}

// machine describes this box for the reports.
type machine struct {
	cores    int
	cpuModel string
	memTotal int // GiB
	memAvail int // GiB
}

func thisMachine() machine {
	m := machine{cores: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.Atoi(f[1])
				switch f[0] {
				case "MemTotal:":
					m.memTotal = kb >> 20
				case "MemAvailable:":
					m.memAvail = kb >> 20
				}
			}
		}
	}
	return m
}

// output runs a command and returns its trimmed stdout ("?" on failure).
func output(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// commit is the short HEAD commit, noting uncommitted changes under paths.
func commit(paths ...string) string {
	c := output("git", "rev-parse", "--short", "HEAD")
	args := append([]string{"diff", "--quiet", "HEAD", "--"}, paths...)
	if exec.Command("git", args...).Run() != nil {
		c += " + uncommitted changes under " + strings.Join(paths, ", ")
	}
	return c
}

func goVersion() string { return output("go", "version") }

// loadavg is the 1/5/15-minute load average.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// replaceBlock rewrites, in markdown text, the lines from the one starting
// with "<!-- NAME:begin" to "<!-- NAME:end -->" with begin, body and the end
// marker. ok is false when text has no such block.
func replaceBlock(text, name, begin, body string) (string, bool) {
	lines := strings.SplitAfter(text, "\n")
	start, end := -1, -1
	for i, l := range lines {
		if start < 0 && strings.HasPrefix(l, "<!-- "+name+":begin") {
			start = i
		} else if start >= 0 && strings.HasPrefix(l, "<!-- "+name+":end -->") {
			end = i
			break
		}
	}
	if start < 0 || end < 0 {
		return text, false
	}
	var b strings.Builder
	for _, l := range lines[:start] {
		b.WriteString(l)
	}
	b.WriteString(begin + "\n")
	b.WriteString(strings.TrimRight(body, "\n") + "\n")
	for _, l := range lines[end:] {
		b.WriteString(l)
	}
	return b.String(), true
}

// writeBlock writes report into file's NAME block. With appendMissing a file
// (or block) that is missing gets one at its end; otherwise it is left alone.
func writeBlock(who, file, name, report string, appendMissing bool) error {
	if file == "" {
		return nil
	}
	begin := fmt.Sprintf("<!-- %s:begin (written by tools/cmd/bench; edits inside are overwritten) -->", name)
	old, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text, ok := replaceBlock(string(old), name, begin, report)
	if !ok {
		if !appendMissing {
			say(who, "%s has no %s:begin/end markers: printed only", file, name)
			return nil
		}
		if len(old) == 0 {
			text = "# Benchmarks\n\nRun with `make bench`.\n"
		}
		text = strings.TrimRight(text, "\n") + "\n\n" + begin + "\n" + strings.TrimRight(report, "\n") + "\n<!-- " + name + ":end -->\n"
	}
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		return err
	}
	say(who, "wrote %s", file)
	return nil
}
