package raft

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSaveAndRestoreState(t *testing.T) {
	s := openLeader(t, singleNodeConfig(t, "node-1", t.TempDir()))
	populate(t, s)
	saved, err := s.SaveState()
	require.NoError(t, err)
	require.Equal(t, s.AppliedIndex(), saved.Index)
	before := viewOf(s)

	// Changes after the save disappear when the snapshot is restored.
	mustApply(t, s, DeleteRelationship{TrustDomain: before.Relationships[0].TrustDomain})
	require.NotEqual(t, before, viewOf(s))
	require.NoError(t, s.RestoreState(saved.Data, 10*time.Second))
	require.Equal(t, before, viewOf(s))

	err = s.RestoreState([]byte(`{"version":99}`), time.Second)
	require.ErrorContains(t, err, "snapshot version 99 is not supported")
	err = s.RestoreState([]byte(`not json`), time.Second)
	require.ErrorContains(t, err, "not a bundlex state document")
	require.Equal(t, before, viewOf(s), "a rejected restore changes nothing")
}
