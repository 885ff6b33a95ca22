//go:build !unix

package main

import "time"

// processCPUTime returns 0 where getrusage is missing, so the CPU columns read 0.
func processCPUTime() time.Duration { return 0 }
