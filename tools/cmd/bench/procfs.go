package main

import (
	"os"
	"strconv"
	"strings"
)

// clkTck is USER_HZ, the unit of the CPU times in /proc: 100 on every Linux
// architecture Go supports (getconf CLK_TCK).
const clkTck = 100

// cpuTicks is the user+system CPU time of pid in clock ticks (0 when gone).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// after its closing parenthesis (field 3, state, comes first).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	sy, _ := strconv.ParseInt(f[12], 10, 64)
	return u + sy
}

// statusKB reads a "Vm…:  123 kB" line of /proc/pid/status (0 when gone).
func statusKB(pid int, key string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key+":") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}

func rssKB(pid int) int64 { return statusKB(pid, "VmRSS") }
func hwmKB(pid int) int64 { return statusKB(pid, "VmHWM") }

// boxTicks is the busy CPU time of the whole machine (all processes, all
// cores) in clock ticks: user, nice, system, irq, softirq, steal.
func boxTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var t int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		t += n
	}
	return t
}
