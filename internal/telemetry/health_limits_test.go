package telemetry

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/testutil"
)

// startLimitedHealth starts a health server with options and returns it with
// its log.
func startLimitedHealth(t *testing.T, options ...HealthOption) (*HealthServer, *syncBuffer) {
	t.Helper()
	logger, logs := newJSONLogger(0)
	server := NewHealthServer("127.0.0.1:0", nil, nil, logger, options...)
	require.NoError(t, server.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, server.Shutdown(ctx))
	})
	return server, logs
}

func dialHealth(t *testing.T, server *HealthServer) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", server.Addr(), 10*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// requireServerCloses reads conn to its end and checks that the server, not
// the client's deadline, ended it.
func requireServerCloses(t *testing.T, conn net.Conn) {
	t.Helper()
	testutil.RequireServerCloses(t, conn, 30*time.Second)
}

func TestHealthServerCutsSlowBody(t *testing.T) {
	server, _ := startLimitedHealth(t, WithHealthLimits(500*time.Millisecond, 0))
	conn := dialHealth(t, server)
	_, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: health\r\n"+
		"Content-Length: 60000\r\n\r\n")
	require.NoError(t, err)

	// One more body byte every 50ms, far below the read timeout, until the
	// server closes the connection.
	testutil.TrickleBody(t, conn, 50*time.Millisecond)
	requireServerCloses(t, conn)
}

func TestHealthServerDropsSilentClient(t *testing.T) {
	server, _ := startLimitedHealth(t, WithHealthLimits(500*time.Millisecond, 0))
	requireServerCloses(t, dialHealth(t, server))
}

func TestHealthServerCapsConnections(t *testing.T) {
	server, logs := startLimitedHealth(t, WithHealthLimits(0, 1))
	// The first connection stays idle, so it holds the only slot until the
	// header timeout of 5s, far longer than the checks below need.
	first := dialHealth(t, server)

	second := dialHealth(t, server)
	_, err := io.WriteString(second, "GET /healthz HTTP/1.1\r\nHost: health\r\n\r\n")
	require.NoError(t, err)
	answered := make(chan int, 1)
	go func() {
		_ = second.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(second), nil)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()

	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), `"limit":"health.max_connections"`)
	}, 30*time.Second, 10*time.Millisecond, "no warning that the cap is reached")
	require.Never(t, func() bool { return len(answered) > 0 }, time.Second,
		10*time.Millisecond, "second connection served while the first was open")

	require.NoError(t, first.Close())
	select {
	case code := <-answered:
		require.Equal(t, http.StatusOK, code)
	case <-time.After(30 * time.Second):
		t.Fatal("second connection still unanswered 30s after the first closed")
	}
}

func TestHealthServerLimitDefaults(t *testing.T) {
	server, logs := startLimitedHealth(t)
	require.Equal(t, DefaultHealthReadTimeout, server.server.ReadTimeout)
	require.Equal(t, HealthReadHeaderTimeout, server.server.ReadHeaderTimeout)
	require.Contains(t, logs.String(), `"max_connections":256`)

	short, _ := startLimitedHealth(t, WithHealthLimits(2*time.Second, 0))
	require.Equal(t, 2*time.Second, short.server.ReadHeaderTimeout,
		"the header timeout must not outlast the whole-request timeout")
}
