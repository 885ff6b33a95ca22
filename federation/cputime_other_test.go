//go:build !unix

package federation

import "time"

// processCPUTime returns 0 where getrusage is missing, so the CPU metric reads 0.
func processCPUTime() time.Duration { return 0 }
