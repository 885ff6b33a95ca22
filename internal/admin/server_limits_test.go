package admin

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/testutil"
)

// startLimitTestServer starts an admin server with middleware and with the
// limits that modify lowers, and returns its socket path and log.
func startLimitTestServer(t *testing.T, backend Backend, modify func(*Server),
	middleware ...Middleware) (string, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	path := filepath.Join(t.TempDir(), "admin.sock")
	srv := NewServer(path, backend, slog.New(slog.NewTextHandler(logs, nil)), middleware...)
	modify(srv)
	require.NoError(t, srv.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	})
	return path, logs
}

func dialSocket(t *testing.T, path string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("unix", path, 10*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// sendSlowly writes body to conn one byte every 50ms, and stops at the first
// failed write or when stop is closed.
func sendSlowly(conn net.Conn, body string, stop <-chan struct{}) {
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for i := range len(body) {
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
		if _, err := io.WriteString(conn, body[i:i+1]); err != nil {
			return
		}
	}
}

func TestServerCutsSlowRequestBody(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Server)
		path   string
	}{
		{name: "bundle request",
			modify: func(s *Server) { s.srv.ReadTimeout = 500 * time.Millisecond },
			path:   "/v1/bundles/a.test"},
		{name: "snapshot restore",
			modify: func(s *Server) { s.snapshotReadTimeout = 500 * time.Millisecond },
			path:   "/v1/snapshot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := startLimitTestServer(t, &clientTestBackend{}, tt.modify)
			conn := dialSocket(t, path)
			_, err := io.WriteString(conn, "PUT "+tt.path+" HTTP/1.1\r\nHost: admin\r\n"+
				"Content-Length: 60000\r\n\r\n")
			require.NoError(t, err)
			stop := make(chan struct{})
			defer close(stop)
			go sendSlowly(conn, strings.Repeat(" ", 60000), stop)

			require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
			response, err := io.ReadAll(conn)
			require.False(t, errors.Is(err, os.ErrDeadlineExceeded),
				"connection still open after 30s; received %q", response)
		})
	}
}

// hidingWriter wraps a ResponseWriter without Unwrap, as a middleware may, so
// that http.ResponseController cannot reach the connection through it.
type hidingWriter struct{ http.ResponseWriter }

func TestServerGivesSnapshotLongerToRead(t *testing.T) {
	backend := &clientTestBackend{}
	hide := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(hidingWriter{w}, r)
		})
	}
	path, logs := startLimitTestServer(t, backend, func(s *Server) {
		s.srv.ReadTimeout = 300 * time.Millisecond
	}, hide)
	conn := dialSocket(t, path)
	// 40 bytes at one per 50ms take about 2s, well past the read timeout.
	body := strings.Repeat("s", 40)
	_, err := io.WriteString(conn, "PUT /v1/snapshot HTTP/1.1\r\nHost: admin\r\n"+
		"Content-Length: 40\r\n\r\n")
	require.NoError(t, err)
	stop := make(chan struct{})
	defer close(stop)
	go sendSlowly(conn, body, stop)

	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "SnapshotRestore "+body, backend.lastCall())
	require.NotContains(t, logs.String(), "extend the read deadline")
}

func TestServerLimitDefaults(t *testing.T) {
	srv := NewServer(filepath.Join(t.TempDir(), "admin.sock"), &clientTestBackend{},
		slog.New(slog.DiscardHandler))
	require.Equal(t, ReadHeaderTimeout, srv.srv.ReadHeaderTimeout)
	require.Equal(t, ReadTimeout, srv.srv.ReadTimeout)
	require.Equal(t, SnapshotReadTimeout, srv.snapshotReadTimeout)
	require.Equal(t, MaxConnections, srv.maxConnections)
}

func TestServerCapsConnections(t *testing.T) {
	path, logs := startLimitTestServer(t, &clientTestBackend{}, func(s *Server) {
		s.maxConnections = 1
	})
	// The first connection stays idle, so it holds the only slot until the
	// header timeout of 10s, far longer than the checks below need.
	first := dialSocket(t, path)

	second := dialSocket(t, path)
	_, err := io.WriteString(second, "GET /v1/status HTTP/1.1\r\nHost: admin\r\n\r\n")
	require.NoError(t, err)
	answered := make(chan error, 1)
	go func() {
		require.NoError(t, second.SetReadDeadline(time.Now().Add(30*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(second), nil)
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()

	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "limit=admin.MaxConnections")
	}, 30*time.Second, 10*time.Millisecond, "no warning that the cap is reached")
	require.Never(t, func() bool { return len(answered) > 0 }, time.Second,
		10*time.Millisecond, "second connection served while the first was open")

	require.NoError(t, first.Close())
	select {
	case err := <-answered:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("second connection still unanswered 30s after the first closed")
	}
}
