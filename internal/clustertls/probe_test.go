package clustertls

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func probeContext(t *testing.T, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

func TestProbeAcceptsNodeOfSameCA(t *testing.T) {
	ca := newTestCA(t)
	peer, _ := startLayer(t, ca.node(t, "node-1"), nil)
	local, _ := startLayer(t, ca.node(t, "node-2"), nil)
	acceptAll(t, peer)

	err := local.Probe(probeContext(t, waitFor), peer.Addr().String())
	require.NoError(t, err)
	require.Zero(t, local.Stats().DialFailures)
}

func TestProbeRejectsNodeOfForeignCA(t *testing.T) {
	peer, _ := startLayer(t, newTestCA(t).node(t, "intruder"), nil)
	local, _ := startLayer(t, newTestCA(t).node(t, "node-1"), nil)
	acceptAll(t, peer)

	err := local.Probe(probeContext(t, waitFor), peer.Addr().String())
	require.ErrorContains(t, err, "TLS handshake with Raft peer "+peer.Addr().String()+
		" failed")
	require.ErrorContains(t, err, "certificate signed by unknown authority")
	require.Equal(t, uint64(1), local.Stats().DialFailures)
}

func TestProbeRejectsPeerThatRejectsUs(t *testing.T) {
	// This node trusts both CAs, so the peer's certificate passes. The peer
	// trusts only its own CA, so it rejects this node's certificate after the
	// handshake, when this node's side of it has already ended.
	ca, peerCA := newTestCA(t), newTestCA(t)
	peer, peerLogs := startLayer(t, peerCA.node(t, "node-1"), nil)
	localFiles := ca.node(t, "node-2")
	localFiles.caFile = filepath.Join(t.TempDir(), "both-cas.pem")
	writeConcatenated(t, localFiles.caFile, ca.certFile, peerCA.certFile)
	local, _ := startLayer(t, localFiles, nil)
	acceptAll(t, peer)

	err := local.Probe(probeContext(t, waitFor), peer.Addr().String())
	require.ErrorContains(t, err, "closed the connection after the TLS handshake")
	require.ErrorContains(t, err, "rejected this node's certificate")
	require.ErrorContains(t, err, "unknown certificate authority")
	require.Eventually(t, func() bool { return peer.Stats().HandshakeFailures == 1 },
		waitFor, 10*time.Millisecond)
	require.Contains(t, peerLogs.String(), "rejected a Raft connection")
}

func TestProbeRejectsClosedPort(t *testing.T) {
	local, _ := startLayer(t, newTestCA(t).node(t, "node-1"), nil)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	address := listener.Addr().String()
	require.NoError(t, listener.Close())

	err = local.Probe(probeContext(t, waitFor), address)
	require.ErrorContains(t, err, "dial Raft peer "+address)
	require.ErrorContains(t, err, "connection refused")
}

func TestProbeEndsAtContextDeadline(t *testing.T) {
	local, _ := startLayer(t, newTestCA(t).node(t, "node-1"), nil)
	// A listener that accepts connections but never sends a handshake message.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = silent.Close() })
	go func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = conn.Close() })
		}
	}()

	err = local.Probe(probeContext(t, 200*time.Millisecond), silent.Addr().String())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "TLS handshake with Raft peer")
}

// writeConcatenated writes the contents of the source files, one after the
// other, to path.
func writeConcatenated(t *testing.T, path string, sources ...string) {
	t.Helper()
	var content []byte
	for _, source := range sources {
		data, err := os.ReadFile(source)
		require.NoError(t, err)
		content = append(content, data...)
	}
	require.NoError(t, os.WriteFile(path, content, 0o600))
}
