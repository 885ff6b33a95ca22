package netlimit

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func newTestListener(t *testing.T, maxConnections int) *Listener {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	listener, err := NewListener(inner, maxConnections, logger, "test.max_connections")
	require.NoError(t, err)
	t.Cleanup(func() { listener.Close() })
	return listener
}

func dial(t *testing.T, listener net.Listener) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", listener.Addr().String(), 10*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

type acceptResult struct {
	conn net.Conn
	err  error
}

func acceptAsync(listener net.Listener) <-chan acceptResult {
	result := make(chan acceptResult, 1)
	go func() {
		conn, err := listener.Accept()
		result <- acceptResult{conn: conn, err: err}
	}()
	return result
}

func TestListenerCapsOpenConnections(t *testing.T) {
	listener := newTestListener(t, 2)
	var accepted []net.Conn
	for range 3 {
		dial(t, listener)
	}
	for range 2 {
		conn, err := listener.Accept()
		require.NoError(t, err)
		accepted = append(accepted, conn)
	}
	require.Equal(t, 2, listener.Open())

	third := acceptAsync(listener)
	require.Eventually(t, func() bool { return listener.Waits() == 1 },
		20*time.Second, 10*time.Millisecond, "Accept did not wait at the cap")
	// Every slot is taken and the waiting Accept has not called the wrapped
	// listener, so the third connection is still in the kernel's queue.
	select {
	case result := <-third:
		t.Fatalf("Accept returned at the cap: %v, %v", result.conn, result.err)
	default:
	}

	require.NoError(t, accepted[0].Close())
	var result acceptResult
	select {
	case result = <-third:
	case <-time.After(20 * time.Second):
		t.Fatal("Accept still waits 20s after a connection closed")
	}
	require.NoError(t, result.err)
	t.Cleanup(func() { result.conn.Close() })
	require.Equal(t, 2, listener.Open())
}

func TestListenerReleasesSlotOnce(t *testing.T) {
	listener := newTestListener(t, 2)
	dial(t, listener)
	dial(t, listener)
	first, err := listener.Accept()
	require.NoError(t, err)
	second, err := listener.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { second.Close() })

	require.NoError(t, first.Close())
	require.Error(t, first.Close(), "second Close of a TCP connection")
	require.Equal(t, 1, listener.Open(), "a second Close freed another slot")
}

func TestListenerCloseEndsWaitingAccept(t *testing.T) {
	listener := newTestListener(t, 1)
	dial(t, listener)
	conn, err := listener.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })

	waiting := acceptAsync(listener)
	require.Eventually(t, func() bool { return listener.Waits() == 1 },
		20*time.Second, 10*time.Millisecond)
	require.NoError(t, listener.Close())
	select {
	case result := <-waiting:
		require.True(t, errors.Is(result.err, net.ErrClosed), "error: %v", result.err)
	case <-time.After(20 * time.Second):
		t.Fatal("Accept still waits 20s after Close")
	}

	_, err = listener.Accept()
	require.ErrorIs(t, err, net.ErrClosed)
}

func TestListenerCloseWriteReachesTCP(t *testing.T) {
	listener := newTestListener(t, 1)
	client := dial(t, listener)
	conn, err := listener.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })

	closer, ok := conn.(interface{ CloseWrite() error })
	require.True(t, ok, "accepted connection has no CloseWrite")
	require.NoError(t, closer.CloseWrite())
	require.NoError(t, client.SetReadDeadline(time.Now().Add(20*time.Second)))
	_, err = client.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "client did not see the half-close")
}

func TestNewListenerRejectsZeroMax(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { inner.Close() })
	_, err = NewListener(inner, 0, nil, "verify.max_connections")
	require.EqualError(t, err, "netlimit: invalid maximum of 0 connections for "+
		"verify.max_connections: use at least 1")
}
