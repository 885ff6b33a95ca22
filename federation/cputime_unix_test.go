//go:build unix

package federation

import (
	"syscall"
	"time"
)

// processCPUTime returns the user and system CPU time of this process so far, which
// a benchmark can divide by its operations. Unlike wall time it barely changes when
// other processes compete for the CPUs.
func processCPUTime() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
