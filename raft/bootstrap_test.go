package raft

import (
	"fmt"
	"testing"

	hraft "github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// configuration returns the latest Raft configuration stored by s.
func configuration(t *testing.T, s *Store) []hraft.Server {
	t.Helper()
	future := s.Raft().GetConfiguration()
	require.NoError(t, future.Error())
	return future.Configuration().Servers
}

func TestBootstrapClusterOfThree(t *testing.T) {
	var nodes []*Store
	var servers []hraft.Server
	for i := 1; i <= 3; i++ {
		node := openStore(t, clusterNodeConfig(t, fmt.Sprintf("n%d", i), false))
		require.False(t, node.HasExistingState(), "node %s", node.NodeID())
		require.Equal(t, hraft.Follower, node.State())
		require.Empty(t, configuration(t, node), "node %s", node.NodeID())
		nodes = append(nodes, node)
		servers = append(servers, hraft.Server{Suffrage: hraft.Voter,
			ID: hraft.ServerID(node.NodeID()), Address: node.Addr()})
	}

	require.NoError(t, nodes[0].BootstrapCluster(servers))
	leader := waitForNewLeader(t, nodes)
	populate(t, leader)
	for _, node := range nodes {
		requireConverged(t, leader, node)
		require.True(t, node.HasExistingState(), "node %s", node.NodeID())
		require.ElementsMatch(t, servers, configuration(t, node), "node %s", node.NodeID())
	}

	t.Run("second bootstrap rejected", func(t *testing.T) {
		err := nodes[1].BootstrapCluster(servers)
		require.ErrorIs(t, err, ErrExistingState)
		require.ErrorContains(t, err, "raft: node n2 cannot bootstrap a cluster")
	})
}

func TestBootstrapClusterRejects(t *testing.T) {
	fresh := openStore(t, clusterNodeConfig(t, "fresh", false))
	bootstrapped := openLeader(t, singleNodeConfig(t, "single", t.TempDir()))
	other := hraft.Server{Suffrage: hraft.Voter, ID: "other", Address: "127.0.0.1:1"}
	for _, tc := range []struct {
		name    string
		store   *Store
		servers []hraft.Server
		is      error
		message string
	}{
		{"store with existing state", bootstrapped, []hraft.Server{other,
			{Suffrage: hraft.Voter, ID: "single", Address: bootstrapped.Addr()}},
			ErrExistingState, "raft: node single cannot bootstrap a cluster"},
		{"servers without this node", fresh, []hraft.Server{other}, nil,
			"raft: node fresh is not among the 1 bootstrap servers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.store.BootstrapCluster(tc.servers)
			require.ErrorContains(t, err, tc.message)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
		})
	}
	require.False(t, fresh.HasExistingState())
	require.Empty(t, configuration(t, fresh))
}

func TestHasExistingStateAfterReopen(t *testing.T) {
	cfg := singleNodeConfig(t, "n1", t.TempDir())
	first := openLeader(t, cfg)
	require.True(t, first.HasExistingState())
	require.NoError(t, first.Close())

	cfg.Bootstrap = false
	reopened := openLeader(t, cfg)
	require.True(t, reopened.existingState, "the state must be found at Open")
	require.True(t, reopened.HasExistingState())
}
