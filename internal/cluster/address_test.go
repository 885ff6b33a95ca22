package cluster

import (
	"testing"

	hraft "github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestRestartWithNewRaftPort(t *testing.T) {
	// Without the address book only the leader's configuration update can point
	// the other servers at the new port.
	nodes := startCluster(t, 3, func(node *testNode) { node.withoutBook = true })
	waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))
	// Restart a follower, so that the restart does not also move leadership.
	moved := nodes[0]
	for _, node := range nodes {
		if !node.store.IsLeader() {
			moved = node
		}
	}
	oldAddress := moved.store.Addr()
	gossipAddress := moved.gossipAddr()
	moved.stop()

	// The same gossip address keeps the member's identity in memberlist; only the
	// Raft port changes, as when a container gets a new port mapping.
	moved.cfg.GossipBindAddr = gossipAddress
	moved.cfg.Join = []string{nodes[0].gossipAddr()}
	if moved == nodes[0] {
		moved.cfg.Join = []string{nodes[1].gossipAddr()}
	}
	moved.start()
	newAddress := moved.store.Addr()
	require.NotEqual(t, oldAddress, newAddress)

	leader := waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))
	waitFor(t, "every node has the new address of "+moved.name, func() bool {
		for _, node := range nodes {
			if servers(t, node)[moved.name].Address != newAddress {
				return false
			}
		}
		return true
	})
	writeBundle(t, leader, nodes)

	updates := leader.logRecords("updated server's Raft address")
	require.NotEmpty(t, updates)
	last := updates[len(updates)-1]
	require.Equal(t, moved.name, last["member"])
	require.Equal(t, string(oldAddress), last["old_raft_address"])
	require.Equal(t, string(newAddress), last["raft_address"])
	require.Equal(t, SuffrageVoter, last["suffrage"])
	require.Equal(t, hraft.Voter, servers(t, leader)[moved.name].Suffrage)
}
