package clustertls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// acceptRetryBase and acceptRetryMax bound the wait after the listener
	// fails, for example when the process runs out of file descriptors.
	acceptRetryBase = 5 * time.Millisecond
	acceptRetryMax  = time.Second

	// handshakeWarningsPerMinute caps the warnings logged for rejected inbound
	// connections, so that a port scanner cannot flood the log. Stats counts
	// every rejection, and the next warning reports how many were left out.
	handshakeWarningsPerMinute = 20
)

// Stats counts what a StreamLayer did since it started.
type Stats struct {
	// HandshakesCompleted counts inbound connections whose TLS handshake
	// completed; Accept returns each of them unless Close comes first.
	HandshakesCompleted uint64
	// HandshakeFailures counts inbound connections closed because the TLS
	// handshake failed or timed out, including plain TCP clients and clients
	// without a valid node certificate.
	HandshakeFailures uint64
	// HandshakesShed counts inbound connections closed without a handshake
	// because MaxPendingHandshakes handshakes were already running.
	HandshakesShed uint64
	// DialFailures counts outbound connections that failed to connect or to
	// complete the handshake.
	DialFailures uint64
	// Reloads counts certificate changes taken into use; ReloadFailures counts
	// checks that found files that did not load or verify.
	Reloads        uint64
	ReloadFailures uint64
}

type counters struct {
	completed, failed, shed, dialFailures atomic.Uint64
}

// Stats returns the layer's counters.
func (l *StreamLayer) Stats() Stats {
	return Stats{
		HandshakesCompleted: l.counters.completed.Load(),
		HandshakeFailures:   l.counters.failed.Load(),
		HandshakesShed:      l.counters.shed.Load(),
		DialFailures:        l.counters.dialFailures.Load(),
		Reloads:             l.creds.reloads.Load(),
		ReloadFailures:      l.creds.reloadFailures.Load(),
	}
}

// acceptLoop accepts TCP connections and runs each handshake in its own
// goroutine, so that a client that stalls its handshake does not delay other clients.
func (l *StreamLayer) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		raw, err := l.listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, acceptRetryBase), acceptRetryMax)
			l.logger.Error("accepting a Raft connection failed; retrying",
				"address", l.listener.Addr().String(), "retry_in", delay, "error", err)
			select {
			case <-l.closing:
				return
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		select {
		case l.pending <- struct{}{}:
		default:
			l.warnRejected(raw.RemoteAddr(), fmt.Errorf("%d TLS handshakes in "+
				"progress, the maximum; closed the connection before its handshake",
				l.cfg.MaxPendingHandshakes))
			l.counters.shed.Add(1)
			_ = raw.Close()
			continue
		}
		l.wg.Add(1)
		go l.handshake(raw)
	}
}

// handshake completes the server side of the TLS handshake within
// HandshakeTimeout and hands the connection to Accept.
func (l *StreamLayer) handshake(raw net.Conn) {
	defer l.wg.Done()
	conn := tls.Server(raw, l.serverConfig)
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.HandshakeTimeout)
	err := conn.HandshakeContext(ctx)
	cancel()
	<-l.pending
	if err != nil {
		_ = raw.Close()
		if l.ctx.Err() != nil {
			return
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("TLS handshake not completed within %s: %w",
				l.cfg.HandshakeTimeout, err)
		}
		// Log before counting, so that a caller that sees the count rise also
		// finds the warning, unless the rate limit left it out.
		l.warnRejected(raw.RemoteAddr(), err)
		l.counters.failed.Add(1)
		return
	}
	l.counters.completed.Add(1)
	select {
	case l.ready <- conn:
	case <-l.closing:
		_ = conn.Close()
	}
}

func (l *StreamLayer) warnRejected(remote net.Addr, err error) {
	allowed, skipped := l.warnings.allow(time.Now())
	if !allowed {
		return
	}
	args := []any{"remote_address", remote.String(), "address",
		l.listener.Addr().String(), "error", err}
	if skipped > 0 {
		args = append(args, "warnings_left_out", skipped)
	}
	l.logger.Warn("rejected a Raft connection", args...)
}

// warningLimiter allows handshakeWarningsPerMinute warnings per minute.
type warningLimiter struct {
	mu          sync.Mutex
	windowStart time.Time
	inWindow    int
	skipped     uint64
}

// allow reports whether a warning may be logged now and, if so, how many were
// left out since the last one logged.
func (w *warningLimiter) allow(now time.Time) (bool, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.windowStart) >= time.Minute {
		w.windowStart, w.inWindow = now, 0
	}
	if w.inWindow >= handshakeWarningsPerMinute {
		w.skipped++
		return false, 0
	}
	w.inWindow++
	skipped := w.skipped
	w.skipped = 0
	return true, skipped
}
