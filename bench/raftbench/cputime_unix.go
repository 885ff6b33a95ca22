//go:build unix

package main

import (
	"syscall"
	"time"
)

// processCPUTime returns the user and system CPU time of this process so far. The
// three nodes of both clusters run in this process, so the difference over a run is
// the CPU cost of that run's writes on all nodes, plus the idle cluster's heartbeats.
func processCPUTime() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
