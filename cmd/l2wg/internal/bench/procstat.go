package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture the benchmark runs on.
const clockTicks = 100

// parseCPUSeconds returns utime+stime, in seconds, from the text of
// /proc/<pid>/stat: the process's own CPU, all its threads included.
func parseCPUSeconds(stat []byte) (float64, error) {
	// comm (field 2) may hold spaces and parentheses: count from the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat: no ')' after comm")
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("parse stat: %d fields after comm, want at least 13", len(f))
	}
	utime, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse stat: utime %q stime %q", f[11], f[12])
	}
	return float64(utime+stime) / clockTicks, nil
}

// parseVmHWM returns the peak resident set size, in bytes, from the text of
// /proc/<pid>/status ("VmHWM:	   12345 kB").
func parseVmHWM(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("parse status: VmHWM %q", bytes.TrimSpace(rest))
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse status: VmHWM %q", f[0])
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("parse status: no VmHWM")
}

// cpuSeconds returns the CPU time the processes pids have used so far, added
// up.
func cpuSeconds(pids []int) (float64, error) {
	var sum float64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
		}
		s, err := parseCPUSeconds(b)
		if err != nil {
			return 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
		}
		sum += s
	}
	return sum, nil
}

// peakRSS returns the largest peak resident set size among the processes
// pids: the memory one node of the VPN needed.
func peakRSS(pids []int) (int64, error) {
	var peak int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, fmt.Errorf("rss of pid %d: %w", pid, err)
		}
		hwm, err := parseVmHWM(b)
		if err != nil {
			return 0, fmt.Errorf("rss of pid %d: %w", pid, err)
		}
		peak = max(peak, hwm)
	}
	return peak, nil
}

// parseStartTicks returns a process's start time, in clock ticks after
// boot, from the text of /proc/<pid>/stat (field 22, starttime).
func parseStartTicks(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat: no ')' after comm")
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("parse stat: %d fields after comm, want at least 20", len(f))
	}
	t, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse stat: starttime %q", f[19])
	}
	return t, nil
}

// parseUptime returns the seconds since boot from the text of /proc/uptime.
func parseUptime(b []byte) (float64, error) {
	f := bytes.Fields(b)
	if len(f) < 1 {
		return 0, fmt.Errorf("parse uptime: empty")
	}
	s, err := strconv.ParseFloat(string(f[0]), 64)
	if err != nil {
		return 0, fmt.Errorf("parse uptime: %q", f[0])
	}
	return s, nil
}

// sinceFirstStart returns how long ago the earliest of the processes pids
// was started (10 ms resolution): the time since the VPN's first daemon
// began, whatever its contestant did before (keys, configs, namespaces).
func sinceFirstStart(pids []int) (float64, error) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	now, err := parseUptime(b)
	if err != nil {
		return 0, err
	}
	first := uint64(0)
	for i, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, fmt.Errorf("start of pid %d: %w", pid, err)
		}
		t, err := parseStartTicks(b)
		if err != nil {
			return 0, fmt.Errorf("start of pid %d: %w", pid, err)
		}
		if i == 0 || t < first {
			first = t
		}
	}
	if len(pids) == 0 {
		return 0, fmt.Errorf("no processes")
	}
	return now - float64(first)/clockTicks, nil
}
