package clustertls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestStreamLayerConnectsTwoNodes(t *testing.T) {
	ca := newTestCA(t)
	server, _ := startLayer(t, ca.node(t, "node-1"), nil)
	client, _ := startLayer(t, ca.node(t, "node-2"), nil)
	accepted := acceptAll(t, server)

	conn, err := client.Dial(hraft.ServerAddress(server.Addr().String()), 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	state := conn.(*tls.Conn).ConnectionState()
	require.Equal(t, uint16(tls.VersionTLS13), state.Version)
	require.Equal(t, "node-1", state.PeerCertificates[0].Subject.CommonName)

	var inbound net.Conn
	select {
	case inbound = <-accepted:
	case <-time.After(waitFor):
		t.Fatal("Accept returned no connection")
	}
	defer inbound.Close()
	require.Equal(t, "node-2",
		inbound.(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName)

	_, err = conn.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(inbound, buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf))
	require.Equal(t, uint64(1), server.Stats().HandshakesCompleted)
	require.Zero(t, server.Stats().HandshakeFailures)
}

// requireDisconnectedSilently reads from conn until the server closes it and
// fails if any byte arrives or the server keeps it open past the deadline.
func requireDisconnectedSilently(t *testing.T, conn net.Conn) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(waitFor)))
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	require.Zero(t, n, "the server sent %q", buf[:n])
	require.Error(t, err)
	var netErr net.Error
	if errors.As(err, &netErr) {
		require.False(t, netErr.Timeout(), "the server kept the connection open")
	}
}

func TestPlainTCPClientGetsNoData(t *testing.T) {
	ca := newTestCA(t)
	layer, logs := startLayer(t, ca.node(t, "node-1"), func(c *StreamLayerConfig) {
		c.HandshakeTimeout = 300 * time.Millisecond
	})
	transport := NewTransport(layer, 2, 5*time.Second, nil)
	tests := []struct {
		name string
		send []byte
	}{
		{"silent plain client", nil},
		// A NetworkTransport RPC starts with its type byte, 0 for AppendEntries.
		{"raft rpc without TLS", []byte{0x00, 0x85, 0xa4, 'T', 'e', 'r', 'm', 0x07}},
		{"http request without TLS", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", layer.Addr().String())
			require.NoError(t, err)
			defer conn.Close()
			if tt.send != nil {
				_, err = conn.Write(tt.send)
				require.NoError(t, err)
			}
			requireDisconnectedSilently(t, conn)
			require.Eventually(t, func() bool {
				return layer.Stats().HandshakeFailures == uint64(i+1)
			}, waitFor, pollEvery)
			require.Contains(t, logs.String(), "remote_address="+conn.LocalAddr().String())
		})
	}
	select {
	case rpc := <-transport.Consumer():
		t.Fatalf("the transport received an RPC: %T", rpc.Command)
	default:
	}
	require.Zero(t, layer.Stats().HandshakesCompleted)
	require.NoError(t, transport.Close())
}

func TestStreamLayerRejectsClientCertificates(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	server, logs := startLayer(t, ca.node(t, "node-1"), nil)
	accepted := acceptAll(t, server)
	roots := ca.pool(t)
	tests := []struct {
		name      string
		cert      *tls.Certificate
		maxTLS    uint16
		wantAlert string
	}{
		{"client without certificate", nil, 0, "certificate required"},
		{"certificate from another CA", ptr(other.node(t, "node-2").keyPair(t)), 0,
			"unknown certificate authority"},
		{"expired node certificate",
			ptr(ca.issue(t, "node-2", time.Now().Add(-2*DefaultNodeCertValidity)).keyPair(t)),
			0, "expired certificate"},
		{"cluster certificate not node", ptr(ca.signOther(t, clientOnlyTemplate())), 0,
			"bad certificate"},
		{"valid certificate over TLS 1.2", ptr(ca.node(t, "node-2").keyPair(t)),
			tls.VersionTLS12, "protocol version not supported"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: roots, ServerName: ServerName, MaxVersion: tt.maxTLS}
			if tt.cert != nil {
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (
					*tls.Certificate, error) {
					return tt.cert, nil
				}
			}
			err := handshakeAndRead(server.Addr().String(), cfg)
			require.ErrorContains(t, err, tt.wantAlert)
			require.Eventually(t, func() bool {
				return server.Stats().HandshakeFailures == uint64(i+1)
			}, waitFor, pollEvery)
			requireNothingAccepted(t, accepted)
		})
	}
	require.Contains(t, logs.String(), "level=WARN msg=\"rejected a Raft connection\"")
	require.Contains(t, logs.String(), "certificate signed by unknown authority")

	// The same server still accepts a node of its own cluster.
	valid := ca.node(t, "node-3").keyPair(t)
	err := handshakeAndRead(server.Addr().String(), &tls.Config{RootCAs: roots,
		ServerName: ServerName, Certificates: []tls.Certificate{valid}})
	require.ErrorIs(t, err, errReadTimedOut)
	select {
	case conn := <-accepted:
		conn.Close()
	case <-time.After(waitFor):
		t.Fatal("Accept returned no connection for a valid node")
	}
}

func ptr[T any](v T) *T { return &v }

var errReadTimedOut = errors.New("the server neither sent data nor closed the connection")

// handshakeAndRead completes the client side of a handshake and reads once. In
// TLS 1.3 the server checks the client certificate after the client finishes,
// so a rejection arrives as an alert on that read. It returns errReadTimedOut
// when the server accepted the connection and stayed silent.
func handshakeAndRead(address string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: waitFor}, "tcp", address, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return errReadTimedOut
	}
	return fmt.Errorf("read after the handshake: %w", err)
}

func TestDialRejectsServers(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	client, _ := startLayer(t, ca.node(t, "node-1"), nil)
	expired := ca.issue(t, "node-2", time.Now().Add(-2*DefaultNodeCertValidity)).keyPair(t)
	tests := []struct {
		name string
		cert tls.Certificate
		want string
	}{
		{"server from another CA", other.node(t, "node-2").keyPair(t),
			"certificate signed by unknown authority"},
		{"expired server certificate", expired, "certificate has expired"},
		{"server certificate not node", ca.signOther(t, serverOnlyTemplate()),
			"certificate is valid for web.bundlex.cluster, not server.bundlex.cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listener, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
				Certificates: []tls.Certificate{tt.cert},
			})
			require.NoError(t, err)
			defer listener.Close()
			go serveHandshakes(listener)

			_, err = client.Dial(hraft.ServerAddress(listener.Addr().String()), waitFor)
			require.ErrorContains(t, err, "TLS handshake with Raft peer")
			require.ErrorContains(t, err, tt.want)
		})
	}
	require.Equal(t, uint64(len(tests)), client.Stats().DialFailures)
}

func serverOnlyTemplate() *x509.Certificate {
	template := clientOnlyTemplate()
	template.Subject.CommonName = "web"
	template.DNSNames = []string{"web." + ClusterDomain}
	template.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	return template
}

// serveHandshakes runs the server side of the handshake on every connection.
func serveHandshakes(listener net.Listener) {
	for {
		conn, err := listener.Accept()
		if err != nil {
			return
		}
		go func() {
			_ = conn.(*tls.Conn).Handshake()
			_ = conn.Close()
		}()
	}
}

func TestDialTimesOutOnSilentServer(t *testing.T) {
	ca := newTestCA(t)
	client, _ := startLayer(t, ca.node(t, "node-1"), nil)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer listener.Close()

	start := time.Now()
	_, err = client.Dial(hraft.ServerAddress(listener.Addr().String()),
		300*time.Millisecond)
	require.ErrorContains(t, err, "TLS handshake with Raft peer")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
}
