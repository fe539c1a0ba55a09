package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat
// (`getconf CLK_TCK`); it is 100 on every Linux architecture Go supports.
const clockTicks = 100

// statFields returns the fields of /proc/PID/stat after the command name,
// so that index 0 is field 3 (state) of proc(5).
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	return parseStat(string(b))
}

func parseStat(s string) ([]string, error) {
	i := strings.LastIndexByte(s, ')') // the name may contain spaces and ')'
	if i < 0 {
		return nil, fmt.Errorf("bad /proc stat line %q", s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return nil, fmt.Errorf("short /proc stat line %q", s)
	}
	return f, nil
}

// ticks sums the proc(5) stat fields numbered in fields.
func ticks(f []string, fields ...int) (int64, error) {
	var sum int64
	for _, n := range fields {
		v, err := strconv.ParseInt(f[n-3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat field %d: %w", n, err)
		}
		sum += v
	}
	return sum, nil
}

// procCPU returns the CPU seconds (user + system, all threads) used so far
// by process pid.
func procCPU(pid int) (float64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	t, err := ticks(f, 14, 15) // utime, stime
	return float64(t) / clockTicks, err
}

// treeCPU returns the CPU seconds used by process pid, its reaped children
// (cutime, cstime) and its living children: for a PostgreSQL postmaster,
// the whole cluster. A backend that exits between two samples moves from
// the second to the first part, so differences stay right.
func treeCPU(pid int) (float64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	total, err := ticks(f, 14, 15, 16, 17)
	if err != nil {
		return 0, err
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	parent := strconv.Itoa(pid)
	for _, d := range dirs {
		child, err := strconv.Atoi(filepath.Base(d))
		if err != nil || child == pid {
			continue
		}
		f, err := statFields(child)
		if err != nil || f[1] != parent { // gone, or not a child
			continue
		}
		if t, err := ticks(f, 14, 15, 16, 17); err == nil {
			total += t
		}
	}
	return float64(total) / clockTicks, nil
}

// memInfo is a process's resident memory, in KiB as /proc reports it.
type memInfo struct {
	RSSKiB int64 `json:"vm_rss_kib"` // VmRSS: resident now
	HWMKiB int64 `json:"vm_hwm_kib"` // VmHWM: peak resident
}

func procMem(pid int) (memInfo, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memInfo{}, err
	}
	return parseStatus(string(b))
}

func parseStatus(s string) (memInfo, error) {
	var m memInfo
	for line := range strings.Lines(s) {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "VmRSS":
			dst = &m.RSSKiB
		case "VmHWM":
			dst = &m.HWMKiB
		default:
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return m, fmt.Errorf("/proc status %s: %w", key, err)
		}
		*dst = n
	}
	if m.RSSKiB == 0 {
		return m, fmt.Errorf("no VmRSS in /proc status (a kernel thread or a zombie?)")
	}
	return m, nil
}

// loadAvg returns the 1, 5 and 15 minute load averages, with a warning when
// the machine was busy: the client and server share its cores.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	s := strings.Join(f[:3], " ")
	if l, err := strconv.ParseFloat(f[0], 64); err == nil && l > 1.5 {
		s += " (busy machine: figures are pessimistic)"
	}
	return s
}
