package forward

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/clustertls"
)

func TestMuxProbeOverTCP(t *testing.T) {
	local, peer := newTestMux(t), newTestMux(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, local.Probe(ctx, peer.RaftLayer().Addr().String()))

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := listener.Addr().String()
	require.NoError(t, listener.Close())
	err = local.Probe(ctx, closed)
	require.ErrorContains(t, err, "forward: dial Raft peer "+closed)
}

func TestMuxProbeUsesClusterTLS(t *testing.T) {
	newTLSMux := func(caDir, node string) *Mux {
		caCert := filepath.Join(caDir, clustertls.CACertFileName)
		certFile, keyFile, err := clustertls.CreateNodeCert(t.TempDir(),
			clustertls.NodeCertOptions{CACertFile: caCert,
				CAKeyFile: filepath.Join(caDir, clustertls.CAKeyFileName), NodeName: node})
		require.NoError(t, err)
		layer, err := clustertls.NewStreamLayer(clustertls.StreamLayerConfig{
			BindAddr: "127.0.0.1:0", CAFile: caCert, CertFile: certFile, KeyFile: keyFile})
		require.NoError(t, err)
		mux := NewMux(layer, slog.New(slog.DiscardHandler))
		t.Cleanup(func() { _ = mux.Close() })
		return mux
	}
	clusterCA, foreignCA := t.TempDir(), t.TempDir()
	for _, dir := range []string{clusterCA, foreignCA} {
		_, _, err := clustertls.CreateCA(dir, clustertls.CAOptions{})
		require.NoError(t, err)
	}
	local := newTLSMux(clusterCA, "node-1")
	member := newTLSMux(clusterCA, "node-2")
	intruder := newTLSMux(foreignCA, "intruder")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, local.Probe(ctx, member.RaftLayer().Addr().String()))
	err := local.Probe(ctx, intruder.RaftLayer().Addr().String())
	require.ErrorContains(t, err, "certificate signed by unknown authority")
}
