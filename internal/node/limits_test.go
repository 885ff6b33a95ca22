package node

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/config"
	"github.com/bundlex/bundlex/internal/testutil"
)

// startLimitedNode starts a single node with the bundle endpoint, the verify API
// and the health listener on free loopback ports, each with readTimeout and a
// cap of one connection.
func startLimitedNode(t *testing.T, readTimeout time.Duration) (*Node,
	*testutil.SyncBuffer) {
	t.Helper()
	cfg, err := config.Dev("org-a.test")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(cfg.DataDir) })
	cfg.BundleEndpoint.Address = "127.0.0.1:0"
	cfg.BundleEndpoint.ReadTimeout = readTimeout
	cfg.BundleEndpoint.MaxConnections = 1
	cfg.Consumers.VerifyAddress = "127.0.0.1:0"
	cfg.Consumers.VerifyReadTimeout = readTimeout
	cfg.Consumers.VerifyMaxConnections = 1
	cfg.Health.Address = "127.0.0.1:0"
	cfg.Health.ReadTimeout = readTimeout
	cfg.Health.MaxConnections = 1

	logs := &testutil.SyncBuffer{}
	n, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	require.NoError(t, n.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, n.Stop(ctx))
	})
	return n, logs
}

// dialTLS opens a TLS connection for HTTP/1.1. It skips verification because
// these tests check the server's limits, not its certificate.
func dialTLS(t *testing.T, address string) *tls.Conn {
	t.Helper()
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(dialer, "tcp", address, &tls.Config{
		InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestNodeListenersCutSlowBody(t *testing.T) {
	n, _ := startLimitedNode(t, time.Second)
	tests := []struct {
		name    string
		address string
		request string
	}{
		{name: "bundle endpoint", address: n.endpoint.Addr().String(),
			request: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 60000\r\n\r\n"},
		{name: "verify API", address: n.verifyServer.Addr().String(),
			request: "POST /v1/verify/jwt-svid HTTP/1.1\r\nHost: a\r\n" +
				"Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := dialTLS(t, tt.address)
			_, err := io.WriteString(conn, tt.request)
			require.NoError(t, err)

			// One more body byte every 50ms, far below the read timeout, until the
			// server closes the connection.
			testutil.TrickleBody(t, conn, 50*time.Millisecond)
			testutil.RequireServerCloses(t, conn, 30*time.Second)
		})
	}
}

func TestNodeListenersCapConnections(t *testing.T) {
	// An idle connection stays open for the request header timeout, which is
	// the default of 10s and far longer than the checks below need.
	n, logs := startLimitedNode(t, config.DefaultReadTimeout)
	tests := []struct {
		name    string
		address string
		setting string
	}{
		{name: "bundle endpoint", address: n.endpoint.Addr().String(),
			setting: "bundle_endpoint.max_connections"},
		{name: "verify API", address: n.verifyServer.Addr().String(),
			setting: "verify.max_connections"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := dialTLS(t, tt.address)

			// The second handshake cannot finish while the first connection holds
			// the only slot, because the server does not accept the connection.
			second := make(chan bool, 1)
			go func() {
				dialer := &net.Dialer{Timeout: 10 * time.Second}
				conn, err := tls.DialWithDialer(dialer, "tcp", tt.address,
					&tls.Config{InsecureSkipVerify: true})
				if err == nil {
					conn.Close()
				}
				second <- err == nil
			}()
			require.Eventually(t, func() bool {
				return strings.Contains(logs.String(), "limit="+tt.setting)
			}, 30*time.Second, 10*time.Millisecond, "no warning that the cap is reached")
			require.Never(t, func() bool { return len(second) > 0 }, time.Second,
				10*time.Millisecond, "second handshake ended while the first connection was open")

			require.NoError(t, first.Close())
			select {
			case ok := <-second:
				require.True(t, ok, "second handshake failed after the first connection closed")
			case <-time.After(30 * time.Second):
				t.Fatal("second handshake still waits 30s after the first connection closed")
			}
		})
	}
}

func TestNodeListenersLogNamesAndLimits(t *testing.T) {
	_, logs := startLimitedNode(t, 3*time.Second)
	require.Regexp(t, `msg="bundle endpoint started" .*component=endpoint .*`+
		`read_timeout=3s max_connections=1`, logs.String())
	require.Regexp(t, `msg="verify API started" .*component=verify .*`+
		`read_timeout=3s max_connections=1`, logs.String())
	require.Regexp(t, `msg="health server started" .*component=health .*`+
		`read_timeout=3s max_connections=1`, logs.String())
	require.NotRegexp(t, `msg="bundle endpoint started" .*component=verify`, logs.String())
}
