package cluster

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func leaveContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// leave makes node leave gracefully, then closes its store as the process would.
func leave(t *testing.T, node *testNode) {
	t.Helper()
	require.NoError(t, node.manager.Leave(leaveContext(t)))
	require.NoError(t, node.store.Close())
	node.manager, node.store = nil, nil
}

func TestGracefulLeaveDownToLastVoter(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))
	writeBundle(t, leader, nodes)

	var follower *testNode
	var rest []*testNode
	for _, node := range nodes {
		if follower == nil && node != leader {
			follower = node
			continue
		}
		rest = append(rest, node)
	}

	t.Run("follower leaves gracefully", func(t *testing.T) {
		leave(t, follower)
		leader := waitForConfiguration(t, rest, voters(rest[0].name, rest[1].name))
		writeBundle(t, leader, rest)
		waitFor(t, "the others see "+follower.name+" as left", func() bool {
			return contains(memberNames(rest[0], StatusLeft), follower.name) &&
				contains(memberNames(rest[1], StatusLeft), follower.name)
		})
		removed := leader.logRecords("removed server from the Raft configuration")
		require.Len(t, removed, 1)
		require.Equal(t, follower.name, removed[0]["member"])
		require.Equal(t, "the server left gracefully", removed[0]["reason"])
	})

	var last *testNode
	t.Run("leader hands off and leaves", func(t *testing.T) {
		leader := waitForConfiguration(t, rest, voters(rest[0].name, rest[1].name))
		last = rest[0]
		if leader == last {
			last = rest[1]
		}
		leave(t, leader)
		waitForConfiguration(t, []*testNode{last}, voters(last.name))
		writeBundle(t, last, []*testNode{last})
		require.NotEmpty(t, leader.logRecords(
			"handed Raft leadership to another voter before leaving"))
	})

	t.Run("last voter leave rejected", func(t *testing.T) {
		err := last.manager.Leave(leaveContext(t))
		require.ErrorIs(t, err, ErrLastVoter)
		require.ErrorContains(t, err, "so stop the node instead")
		require.True(t, last.store.IsLeader())
		require.Equal(t, []string{last.name}, memberNames(last, StatusAlive))
		writeBundle(t, last, []*testNode{last})
	})
}

func TestRemoveServerRules(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))
	var follower *testNode
	for _, node := range nodes {
		if node != leader {
			follower = node
		}
	}
	for _, tc := range []struct {
		name    string
		node    *testNode
		target  string
		is      error
		message string
	}{
		{"follower cannot remove", follower, leader.name, ErrNotLeader,
			"send the request to the leader"},
		{"leader cannot remove itself", leader, leader.name, nil, "call Leave on it instead"},
		{"unknown server not found", leader, "n9", ErrServerNotFound,
			"n9 is not in the Raft configuration of 3 servers"},
		{"alive server rejected", leader, follower.name, ErrServerAlive,
			"responds to gossip, so the leader would add it again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.node.manager.RemoveServer(leaveContext(t), tc.target)
			require.ErrorContains(t, err, tc.message)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Len(t, servers(t, leader), 3)
		})
	}

	t.Run("dead server removed on request", func(t *testing.T) {
		follower.stop()
		waitFor(t, "the leader sees "+follower.name+" as dead", func() bool {
			return contains(memberNames(leader, StatusDead), follower.name)
		})
		require.NoError(t, leader.manager.RemoveServer(leaveContext(t), follower.name))
		require.NotContains(t, servers(t, leader), follower.name)
	})
}
