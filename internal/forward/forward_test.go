package forward

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/raft"
)

func newTestMux(t *testing.T) *Mux {
	t.Helper()
	layer, err := NewTCPLayer("127.0.0.1:0", "")
	require.NoError(t, err)
	mux := NewMux(layer, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = mux.Close() })
	return mux
}

func TestMuxRoutesRaftAndForwardConnections(t *testing.T) {
	mux := newTestMux(t)
	addr := mux.RaftLayer().Addr().String()

	// A connection starting with a Raft RPC type byte reaches Raft's listener.
	raftConn, err := mux.RaftLayer().Dial(hraft.ServerAddress(addr), time.Second)
	require.NoError(t, err)
	defer raftConn.Close()
	_, err = raftConn.Write([]byte{0, 'r', 'a', 'f', 't'})
	require.NoError(t, err)
	accepted, err := mux.RaftLayer().Accept()
	require.NoError(t, err)
	buf := make([]byte, 5)
	_, err = io.ReadFull(accepted, buf)
	require.NoError(t, err)
	require.Equal(t, []byte{0, 'r', 'a', 'f', 't'}, buf, "Raft sees its first byte")

	// A forwarding connection reaches the forwarding listener without its marker.
	fwdConn, err := mux.DialForward(addr, time.Second)
	require.NoError(t, err)
	defer fwdConn.Close()
	_, err = fwdConn.Write([]byte("GET"))
	require.NoError(t, err)
	listener := mux.ForwardListener()
	accepted, err = listener.Accept()
	require.NoError(t, err)
	buf = make([]byte, 3)
	_, err = io.ReadFull(accepted, buf)
	require.NoError(t, err)
	require.Equal(t, "GET", string(buf))

	// Closing the forwarding listener ends its Accept but not Raft's.
	require.NoError(t, listener.Close())
	_, err = listener.Accept()
	require.ErrorIs(t, err, net.ErrClosed)
}

func TestApplyForwardingMapsErrors(t *testing.T) {
	mux := newTestMux(t)
	var received raft.Command
	apply := func(_ context.Context, cmd raft.Command) error {
		received = cmd
		if d, ok := cmd.(raft.DeleteFederatedBundle); ok && d.TrustDomain == "gone.test" {
			return errors.Join(raft.ErrNotFound, errors.New("no bundle for gone.test"))
		}
		return nil
	}
	srv := &http.Server{Handler: Handler(apply, http.NotFoundHandler())}
	go func() { _ = srv.Serve(mux.ForwardListener()) }()
	t.Cleanup(func() { _ = srv.Close() })
	client := NewClient(mux, time.Second, 5*time.Second)
	addr := mux.RaftLayer().Addr().String()
	ctx := context.Background()

	require.NoError(t, client.Apply(ctx, addr, raft.DeleteFederatedBundle{TrustDomain: "ok.test"}))
	require.Equal(t, raft.DeleteFederatedBundle{TrustDomain: "ok.test"}, received)

	err := client.Apply(ctx, addr, raft.DeleteFederatedBundle{TrustDomain: "gone.test"})
	require.ErrorIs(t, err, raft.ErrNotFound, "the leader's sentinel survives the trip")
	require.ErrorContains(t, err, "no bundle for gone.test")

	err = client.Apply(ctx, "127.0.0.1:1", raft.DeleteFederatedBundle{TrustDomain: "x.test"})
	require.ErrorIs(t, err, raft.ErrNotLeader, "an unreachable leader reads as no leader")
}

func TestApplyForwardingTimesOut(t *testing.T) {
	mux := newTestMux(t)
	release := make(chan struct{})
	apply := func(ctx context.Context, _ raft.Command) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	srv := &http.Server{Handler: Handler(apply, http.NotFoundHandler())}
	go func() { _ = srv.Serve(mux.ForwardListener()) }()
	t.Cleanup(func() {
		close(release)
		_ = srv.Close()
	})
	client := NewClient(mux, time.Second, 200*time.Millisecond)
	start := time.Now()
	err := client.Apply(context.Background(), mux.RaftLayer().Addr().String(),
		raft.DeleteFederatedBundle{TrustDomain: "slow.test"})
	require.ErrorIs(t, err, raft.ErrNotLeader, "a silent leader reads as no leader")
	require.Less(t, time.Since(start), 30*time.Second, "the wait is bounded")
}
