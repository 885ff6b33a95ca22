package clustertls

import (
	"net"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestStalledHandshakeDoesNotBlockAccept(t *testing.T) {
	ca := newTestCA(t)
	server, _ := startLayer(t, ca.node(t, "node-1"), func(c *StreamLayerConfig) {
		c.HandshakeTimeout = time.Hour
	})
	client, _ := startLayer(t, ca.node(t, "node-2"), nil)
	accepted := acceptAll(t, server)

	// Clients that connect and never send a ClientHello.
	for range 3 {
		conn, err := net.Dial("tcp", server.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
	}
	start := time.Now()
	conn, err := client.Dial(hraft.ServerAddress(server.Addr().String()), waitFor)
	require.NoError(t, err)
	defer conn.Close()
	select {
	case inbound := <-accepted:
		defer inbound.Close()
		require.Equal(t, conn.LocalAddr().String(), inbound.RemoteAddr().String())
	case <-time.After(waitFor):
		t.Fatal("Accept stayed blocked behind the stalled handshakes")
	}
	t.Logf("accepted a node behind 3 stalled handshakes after %s", time.Since(start))
	require.Zero(t, server.Stats().HandshakeFailures)
}

func TestHandshakeLimitShedsConnections(t *testing.T) {
	ca := newTestCA(t)
	server, logs := startLayer(t, ca.node(t, "node-1"), func(c *StreamLayerConfig) {
		c.HandshakeTimeout = time.Hour
		c.MaxPendingHandshakes = 2
	})
	for range 2 {
		conn, err := net.Dial("tcp", server.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
	}
	extra, err := net.Dial("tcp", server.Addr().String())
	require.NoError(t, err)
	defer extra.Close()

	requireDisconnectedSilently(t, extra)
	require.Equal(t, uint64(1), server.Stats().HandshakesShed)
	require.Contains(t, logs.String(), "2 TLS handshakes in progress, the maximum")
}

func TestCloseEndsPendingHandshakes(t *testing.T) {
	ca := newTestCA(t)
	server, _ := startLayer(t, ca.node(t, "node-1"), func(c *StreamLayerConfig) {
		c.HandshakeTimeout = time.Hour
	})
	conn, err := net.Dial("tcp", server.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	require.Eventually(t, func() bool { return len(server.pending) == 1 }, waitFor,
		pollEvery)

	closed := make(chan error, 1)
	go func() { closed <- server.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("Close waited for a stalled handshake")
	}
	requireDisconnectedSilently(t, conn)
	_, err = server.Accept()
	require.ErrorIs(t, err, net.ErrClosed)
	require.NoError(t, server.Close(), "a second Close must succeed")
}

func TestWarningLimiterCountsSkipped(t *testing.T) {
	var limiter warningLimiter
	now := time.Now()
	for i := range handshakeWarningsPerMinute {
		allowed, skipped := limiter.allow(now)
		require.True(t, allowed, "warning %d", i)
		require.Zero(t, skipped)
	}
	for range 5 {
		allowed, _ := limiter.allow(now.Add(30 * time.Second))
		require.False(t, allowed)
	}
	allowed, skipped := limiter.allow(now.Add(time.Minute))
	require.True(t, allowed)
	require.Equal(t, uint64(5), skipped)
}

func TestNewStreamLayerRejectsBadConfig(t *testing.T) {
	ca := newTestCA(t)
	good := ca.node(t, "node-1")
	foreign := newTestCA(t).node(t, "node-1")
	expired := ca.issue(t, "node-1", time.Now().Add(-2*DefaultNodeCertValidity))
	tests := []struct {
		name   string
		change func(*StreamLayerConfig)
		want   string
	}{
		{"bind address missing", func(c *StreamLayerConfig) { c.BindAddr = "" },
			"bind address is missing"},
		{"key file missing", func(c *StreamLayerConfig) { c.KeyFile = "" },
			"are all required"},
		{"negative handshake timeout", func(c *StreamLayerConfig) {
			c.HandshakeTimeout = -time.Second
		}, "limits must not be negative"},
		{"certificate of another CA", func(c *StreamLayerConfig) {
			c.CertFile, c.KeyFile = foreign.certFile, foreign.keyFile
		}, "certificate signed by unknown authority"},
		{"expired node certificate", func(c *StreamLayerConfig) {
			c.CertFile, c.KeyFile = expired.certFile, expired.keyFile
		}, "certificate has expired"},
		{"key of another node", func(c *StreamLayerConfig) { c.KeyFile = foreign.keyFile },
			"private key does not match public key"},
		{"CA file without certificates", func(c *StreamLayerConfig) {
			c.CAFile = good.keyFile
		}, "no PEM CERTIFICATE block found"},
		{"unspecified bind without advertise", func(c *StreamLayerConfig) {
			c.BindAddr = "0.0.0.0:0"
		}, "set an advertise address"},
		{"unspecified advertise address", func(c *StreamLayerConfig) {
			c.AdvertiseAddr = "0.0.0.0:8300"
		}, "peers need a specific IP address and port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := StreamLayerConfig{BindAddr: "127.0.0.1:0", CAFile: good.caFile,
				CertFile: good.certFile, KeyFile: good.keyFile}
			tt.change(&cfg)
			layer, err := NewStreamLayer(cfg)
			if layer != nil {
				_ = layer.Close()
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestAdvertiseAddrIsLayerAddr(t *testing.T) {
	ca := newTestCA(t)
	layer, _ := startLayer(t, ca.node(t, "node-1"), func(c *StreamLayerConfig) {
		c.AdvertiseAddr = "127.0.0.2:8300"
	})
	require.Equal(t, "127.0.0.2:8300", layer.Addr().String())
	transport := NewTransport(layer, 1, time.Second, nil)
	t.Cleanup(func() { require.NoError(t, transport.Close()) })
	require.Equal(t, hraft.ServerAddress("127.0.0.2:8300"), transport.LocalAddr())
}
