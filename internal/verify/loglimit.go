package verify

import (
	"sync"
	"time"
)

// DefaultRejectionLogsPerSecond is how many "credential rejected" lines the
// handler writes per second at most. Further rejections in the same second are
// counted and the count is logged with the next line written.
const DefaultRejectionLogsPerSecond = 20

// logLimiter allows a fixed number of events per one-second window.
type logLimiter struct {
	perSecond int

	mu          sync.Mutex
	windowStart time.Time
	inWindow    int
	suppressed  int
}

func newLogLimiter(perSecond int) *logLimiter {
	return &logLimiter{perSecond: perSecond}
}

// allow reports whether an event at now may be logged and, if so, how many events
// were suppressed since the last allowed one.
func (l *logLimiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.windowStart) >= time.Second {
		l.windowStart = now
		l.inWindow = 0
	}
	if l.inWindow >= l.perSecond {
		l.suppressed++
		return false, 0
	}
	l.inWindow++
	suppressed := l.suppressed
	l.suppressed = 0
	return true, suppressed
}
