package forward

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

// ForwardByte starts every forwarding connection. hashicorp/raft starts its
// connections with an RPC type byte from 0 to 4, so the two cannot be confused.
const ForwardByte byte = 0x42

// MaxRaftDial bounds one Raft connection attempt.
const MaxRaftDial = 3 * time.Second

// firstByteTimeout bounds the wait for the first byte of an accepted connection.
const firstByteTimeout = 10 * time.Second

// Mux splits one stream layer into Raft's connections and forwarding connections.
type Mux struct {
	inner hraft.StreamLayer
	log   *slog.Logger

	raftConns    chan net.Conn
	forwardConns chan net.Conn
	closed       chan struct{}
	closeOnce    sync.Once
}

// NewMux starts accepting on inner. Close the Mux to stop.
func NewMux(inner hraft.StreamLayer, logger *slog.Logger) *Mux {
	m := &Mux{
		inner:        inner,
		log:          logger,
		raftConns:    make(chan net.Conn),
		forwardConns: make(chan net.Conn),
		closed:       make(chan struct{}),
	}
	go m.acceptLoop()
	return m
}

func (m *Mux) acceptLoop() {
	for {
		conn, err := m.inner.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			m.log.Warn("accept on the Raft port failed", "error", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		go m.route(conn)
	}
}

// route reads the first byte and hands the connection to Raft or to forwarding.
func (m *Mux) route(conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(firstByteTimeout))
	reader := bufio.NewReader(conn)
	first, err := reader.Peek(1)
	_ = conn.SetReadDeadline(time.Time{})
	if err != nil {
		conn.Close()
		return
	}
	wrapped := &peekedConn{Conn: conn, reader: reader}
	target := m.raftConns
	if first[0] == ForwardByte {
		_, _ = reader.ReadByte()
		target = m.forwardConns
	}
	select {
	case target <- wrapped:
	case <-m.closed:
		conn.Close()
	}
}

// Close stops accepting and closes the inner layer.
func (m *Mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closed)
		err = m.inner.Close()
	})
	return err
}

// RaftLayer returns the stream layer to give hashicorp/raft's transport.
func (m *Mux) RaftLayer() hraft.StreamLayer { return &raftLayer{m: m} }

// ForwardListener returns the listener of the forwarding HTTP server. Closing it
// stops its Accept; the Mux keeps serving Raft.
func (m *Mux) ForwardListener() net.Listener {
	return &forwardListener{m: m, closed: make(chan struct{})}
}

// DialForward opens a forwarding connection to the node at address.
func (m *Mux) DialForward(address string, timeout time.Duration) (net.Conn, error) {
	conn, err := m.inner.Dial(hraft.ServerAddress(address), timeout)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write([]byte{ForwardByte}); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

type peekedConn struct {
	net.Conn
	reader *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.reader.Read(p) }

type raftLayer struct{ m *Mux }

func (l *raftLayer) Accept() (net.Conn, error) {
	select {
	case conn := <-l.m.raftConns:
		return conn, nil
	case <-l.m.closed:
		return nil, errors.New("forward: raft listener closed")
	}
}

func (l *raftLayer) Close() error   { return l.m.Close() }
func (l *raftLayer) Addr() net.Addr { return l.m.inner.Addr() }

// Dial connects to another node for Raft. The connection attempt is capped at
// MaxRaftDial: hashicorp/raft passes its whole I/O timeout, and its shutdown waits
// for vote requests in flight, so a dial to a dead node would otherwise hold a
// stopping node for that long.
func (l *raftLayer) Dial(address hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.m.inner.Dial(address, min(timeout, MaxRaftDial))
}

type forwardListener struct {
	m         *Mux
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *forwardListener) Accept() (net.Conn, error) {
	select {
	case conn := <-l.m.forwardConns:
		return conn, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-l.m.closed:
		return nil, net.ErrClosed
	}
}

func (l *forwardListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}
func (l *forwardListener) Addr() net.Addr { return l.m.inner.Addr() }

// prober is a stream layer that can check a peer without a Raft connection, as
// the cluster TLS layer does.
type prober interface {
	Probe(ctx context.Context, address string) error
}

// Probe checks that the node at address accepts a connection on its Raft port.
// Over the cluster TLS layer that includes mutual certificate checks. Over plain
// TCP it only opens and closes a connection. ctx bounds the probe; without a
// deadline, MaxRaftDial bounds a TCP dial.
func (m *Mux) Probe(ctx context.Context, address string) error {
	if p, ok := m.inner.(prober); ok {
		return p.Probe(ctx, address)
	}
	timeout := MaxRaftDial
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	if timeout <= 0 {
		return fmt.Errorf("forward: probe Raft peer %s: %w", address,
			context.DeadlineExceeded)
	}
	conn, err := m.inner.Dial(hraft.ServerAddress(address), timeout)
	if err != nil {
		return fmt.Errorf("forward: dial Raft peer %s: %w", address, err)
	}
	return conn.Close()
}
