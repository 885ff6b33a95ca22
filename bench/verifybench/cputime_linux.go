package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicksPerSecond returns the unit of the CPU times in /proc (USER_HZ), which
// the kernel passes to every process as AT_CLKTCK in its auxiliary vector: the
// value that sysconf(_SC_CLK_TCK) returns in C.
var clockTicksPerSecond = sync.OnceValues(func() (int64, error) {
	const atClockTick = 17 // AT_CLKTCK in linux/auxvec.h
	data, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 0, fmt.Errorf("verifybench: read the clock tick: %w", err)
	}
	// The vector is pairs of native words, a key and then its value.
	word := strconv.IntSize / 8
	read := func(b []byte) uint64 {
		if word == 4 {
			return uint64(binary.NativeEndian.Uint32(b))
		}
		return binary.NativeEndian.Uint64(b)
	}
	for i := 0; i+2*word <= len(data); i += 2 * word {
		if read(data[i:]) == atClockTick {
			if ticks := int64(read(data[i+word:])); ticks > 0 {
				return ticks, nil
			}
		}
	}
	return 0, errors.New("verifybench: /proc/self/auxv has no valid AT_CLKTCK entry")
})

// ticksToDuration converts CPU time from /proc into a duration.
func ticksToDuration(ticks int64) (time.Duration, error) {
	perSecond, err := clockTicksPerSecond()
	if err != nil {
		return 0, err
	}
	return time.Duration(ticks) * time.Second / time.Duration(perSecond), nil
}

// processCPUTime returns the user and system CPU time of process pid so far, all
// threads included, from /proc/<pid>/stat. Its resolution is one clock tick,
// usually 10 ms.
func processCPUTime(pid int) (time.Duration, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("verifybench: read the node's CPU time: %w", err)
	}
	// The command name in field 2 may contain spaces and parentheses, so the
	// fields are counted from the last ')'. utime and stime are fields 14 and 15.
	end := strings.LastIndexByte(string(data), ')')
	if end < 0 {
		return 0, fmt.Errorf("verifybench: %s has no command name: %q", path, data)
	}
	fields := strings.Fields(string(data[end+1:]))
	const utimeIndex = 14 - 3 // fields[0] is field 3, the state
	if len(fields) <= utimeIndex+1 {
		return 0, fmt.Errorf("verifybench: %s has %d fields after the command name; "+
			"expected at least %d", path, len(fields), utimeIndex+2)
	}
	var ticks int64
	for _, field := range fields[utimeIndex : utimeIndex+2] {
		value, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("verifybench: %s has CPU time %q: %w", path, field, err)
		}
		ticks += value
	}
	return ticksToDuration(ticks)
}

// selfCPUTime returns the user and system CPU time of this process so far.
func selfCPUTime() (time.Duration, error) {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0, fmt.Errorf("verifybench: getrusage: %w", err)
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()), nil
}

// machineCPUTime returns the CPU time that all processes of the machine used
// so far: user, nice, system, irq and softirq of the first line of /proc/stat.
// Idle, iowait and steal (time the hypervisor gave to other machines) are not
// time of this machine's processes, and guest time is counted in user already.
func machineCPUTime() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("verifybench: read the machine's CPU time: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	// The fields are: cpu user nice system idle iowait irq softirq steal ...
	const softirqIndex = 7
	if len(fields) <= softirqIndex || fields[0] != "cpu" {
		return 0, fmt.Errorf("verifybench: /proc/stat starts with %q; expected the "+
			"cpu line with at least %d fields", line, softirqIndex+1)
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, softirqIndex} {
		value, err := strconv.ParseInt(fields[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("verifybench: /proc/stat has CPU time %q: %w", fields[i],
				err)
		}
		ticks += value
	}
	return ticksToDuration(ticks)
}
