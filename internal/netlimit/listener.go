// Package netlimit caps how many connections a server keeps open at once.
//
// A Listener accepts a new connection only while fewer than its maximum are
// open. At the cap, Accept waits for a connection to close and does not take
// new connections from the kernel, so they wait in the kernel's accept queue
// (its length is the listen backlog, net.core.somaxconn on Linux). When that
// queue is full too, the kernel drops or refuses further connection attempts.
// Connections that wait in the queue have not started their TLS handshake or
// request, so the server's timeouts start only once they are accepted.
package netlimit

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// FullLogInterval is the shortest time between two warnings that the cap is
// reached, so that a flood of connections does not flood the log.
const FullLogInterval = time.Minute

// Listener wraps a net.Listener and keeps at most a fixed number of its
// connections open at once.
type Listener struct {
	net.Listener

	// slots contains one value per open connection; its capacity is the cap.
	slots     chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
	logger    *slog.Logger
	limitName string
	waits     atomic.Uint64
	// lastFullLog is the Unix nanosecond time of the last warning.
	lastFullLog atomic.Int64
}

// NewListener returns a Listener that keeps at most maxConnections of inner's
// connections open. When Accept has to wait, it logs a warning to logger at most
// once per FullLogInterval, naming limitName: the configuration key or constant
// that sets the cap.
func NewListener(inner net.Listener, maxConnections int, logger *slog.Logger,
	limitName string) (*Listener, error) {
	if maxConnections < 1 {
		return nil, fmt.Errorf("netlimit: invalid maximum of %d connections for %s: "+
			"use at least 1", maxConnections, limitName)
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Listener{
		Listener:  inner,
		slots:     make(chan struct{}, maxConnections),
		closed:    make(chan struct{}),
		logger:    logger,
		limitName: limitName,
	}, nil
}

// Accept waits until fewer than the maximum connections are open, then returns
// the next connection of the wrapped listener. Closing the returned connection
// frees its slot. After Close, Accept returns an error that wraps net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, fmt.Errorf("netlimit: accept: %w", net.ErrClosed)
	default:
		l.waits.Add(1)
		l.logFull()
		select {
		case l.slots <- struct{}{}:
		case <-l.closed:
			return nil, fmt.Errorf("netlimit: accept: %w", net.ErrClosed)
		}
	}
	conn, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: conn, release: func() { <-l.slots }}, nil
}

func (l *Listener) logFull() {
	now := time.Now().UnixNano()
	last := l.lastFullLog.Load()
	if last != 0 && now-last < int64(FullLogInterval) {
		return
	}
	if !l.lastFullLog.CompareAndSwap(last, now) {
		return
	}
	l.logger.Warn("connection limit reached: new connections wait in the accept queue "+
		"until an open one closes", "address", l.Addr().String(),
		"max_connections", cap(l.slots), "limit", l.limitName)
}

// Close closes the wrapped listener and ends any Accept that waits for a slot.
// Connections already accepted stay open.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// Open returns the number of accepted connections that are still open.
func (l *Listener) Open() int { return len(l.slots) }

// Waits returns how many times Accept found every slot taken and had to wait.
func (l *Listener) Waits() uint64 { return l.waits.Load() }

// Max returns the maximum number of open connections.
func (l *Listener) Max() int { return cap(l.slots) }

// limitedConn frees its listener slot on the first Close.
type limitedConn struct {
	net.Conn
	releaseOnce sync.Once
	release     func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.releaseOnce.Do(c.release)
	return err
}

// CloseWrite shuts down the writing side when the wrapped connection supports
// it, as *net.TCPConn and *net.UnixConn do. net/http calls it to close a
// connection gracefully after an error response.
func (c *limitedConn) CloseWrite() error {
	if closer, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return closer.CloseWrite()
	}
	return errors.New("netlimit: connection does not support CloseWrite")
}
