package admin

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func (b *clientTestBackend) ClusterMembers(context.Context) ([]ClusterMember, error) {
	return []ClusterMember{{Name: "node-1", Status: "alive", Suffrage: "voter"}},
		b.record("ClusterMembers")
}

func (b *clientTestBackend) ClusterRaft(context.Context) (RaftStatus, error) {
	return RaftStatus{Node: "node-1", State: "Leader", LeaderID: "node-1"}, b.record("ClusterRaft")
}

func (b *clientTestBackend) ClusterLeave(context.Context) error {
	return b.record("ClusterLeave")
}

func (b *clientTestBackend) ClusterRemove(_ context.Context, req RemoveServerRequest) error {
	return b.record("ClusterRemove " + req.Node)
}

func (b *clientTestBackend) SnapshotSave(_ context.Context, w io.Writer) error {
	if err := b.record("SnapshotSave"); err != nil {
		return err
	}
	_, err := w.Write([]byte("snapshot-bytes"))
	return err
}

func (b *clientTestBackend) SnapshotRestore(_ context.Context, r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return b.record("SnapshotRestore " + string(data))
}

func TestClientClusterRoutes(t *testing.T) {
	backend := &clientTestBackend{}
	client := startClientTestServer(t, backend)
	ctx := context.Background()

	members, err := client.ClusterMembers(ctx)
	require.NoError(t, err)
	require.Equal(t, "node-1", members[0].Name)
	st, err := client.ClusterRaft(ctx)
	require.NoError(t, err)
	require.Equal(t, "node-1", st.LeaderID)
	require.NoError(t, client.ClusterLeave(ctx))
	require.Equal(t, "ClusterLeave", backend.lastCall())
	require.NoError(t, client.ClusterRemove(ctx, "node-3"))
	require.Equal(t, "ClusterRemove node-3", backend.lastCall())

	data, err := client.SnapshotSave(ctx)
	require.NoError(t, err)
	require.Equal(t, "snapshot-bytes", string(data))
	require.NoError(t, client.SnapshotRestore(ctx, []byte("restore-me")))
	require.Equal(t, "SnapshotRestore restore-me", backend.lastCall())

	backend.failure = Errorf(CodeNotLeader, "no cluster leader")
	_, err = client.SnapshotSave(ctx)
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, CodeNotLeader, apiErr.Code)
	require.Equal(t, "no cluster leader", apiErr.Message)
}
