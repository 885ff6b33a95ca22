package raft

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNodeKeysPutReplaceDelete(t *testing.T) {
	dir := t.TempDir()
	s := openLeader(t, singleNodeConfig(t, "node-1", dir))
	ctx := testContext(t)
	retire := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

	mustApply(t, s, PutNodeKeys{Keys: NodeKeys{Node: "node-2", Document: []byte(`{"keys":[]}`),
		RetireAt: retire}})
	mustApply(t, s, PutNodeKeys{Keys: NodeKeys{Node: "node-1", Document: []byte(`{"keys":[1]}`),
		RetireAt: retire}})
	keys := s.NodeKeys()
	require.Len(t, keys, 2)
	require.Equal(t, "node-1", keys[0].Node, "sorted by node name")
	require.Equal(t, retire, keys[1].RetireAt)

	mustApply(t, s, PutNodeKeys{Keys: NodeKeys{Node: "node-2", Document: []byte(`{"keys":[2]}`)}})
	require.JSONEq(t, `{"keys":[2]}`, string(s.NodeKeys()[1].Document))

	mustApply(t, s, DeleteNodeKeys{Node: "node-2"})
	require.Len(t, s.NodeKeys(), 1)
	err := s.Apply(ctx, DeleteNodeKeys{Node: "node-2"})
	require.ErrorIs(t, err, ErrNotFound)
	require.Len(t, s.NodeKeys(), 1, "a rejected delete changes nothing")

	err = s.Apply(ctx, PutNodeKeys{Keys: NodeKeys{Node: "", Document: []byte(`{}`)}})
	require.ErrorContains(t, err, "node name is empty")

	// The keys survive a snapshot and a reopen.
	require.NoError(t, s.Snapshot())
	require.NoError(t, s.Close())
	reopened := openLeader(t, singleNodeConfig(t, "node-1", dir))
	require.Len(t, reopened.NodeKeys(), 1)
	require.Equal(t, "node-1", reopened.NodeKeys()[0].Node)
}
