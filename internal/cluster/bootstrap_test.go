package cluster

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBootstrapExpectFormsCluster(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))
	writeBundle(t, leader, nodes)

	t.Run("lowest name bootstraps once", func(t *testing.T) {
		require.Len(t, nodes[0].logRecords("bootstrapped the cluster"), 1)
		for _, node := range nodes[1:] {
			require.Empty(t, node.logRecords("bootstrapped the cluster"), "node %s",
				node.name)
		}
	})
	t.Run("members list every server", func(t *testing.T) {
		for _, node := range nodes {
			members := node.manager.Members()
			require.Len(t, members, 3, "members of %s", node.name)
			for i, member := range members {
				require.Equal(t, nodes[i].name, member.Name)
				require.Equal(t, StatusAlive, member.Status)
				require.Equal(t, SuffrageVoter, member.Suffrage)
				require.Equal(t, string(nodes[i].store.Addr()), member.RaftAddr)
				require.Equal(t, member.RaftAddr, member.ConfigRaftAddr)
				require.Equal(t, nodes[i].gossipAddr(), member.GossipAddr)
			}
		}
	})
}

func TestRestartAllServers(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))
	sequence := writeBundle(t, leader, nodes)

	// Shutdown does not leave, so the servers stay in the Raft configuration.
	for _, node := range nodes {
		node.stop()
	}
	// Every server comes back on new Raft and gossip ports, so only the address
	// book lets them reach each other before a leader updates the configuration.
	nodes[0].start()
	for _, node := range nodes[1:] {
		node.cfg.Join = []string{nodes[0].gossipAddr()}
		node.start()
	}
	leader = waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))
	waitFor(t, "the configuration lists the new Raft addresses", func() bool {
		for _, node := range nodes {
			if servers(t, leader)[node.name].Address != node.store.Addr() {
				return false
			}
		}
		return true
	})
	require.Equal(t, sequence+1, writeBundle(t, leader, nodes))
	for _, node := range nodes {
		require.Len(t, node.logRecords("bootstrapped the cluster"),
			map[string]int{"n1": 1}[node.name], "node %s", node.name)
		require.NotEmpty(t, node.logRecords(
			"this node has Raft state, so it does not bootstrap a cluster"))
	}
}

func TestSingleServerBootstrapsAlone(t *testing.T) {
	node := newTestNode(t, "solo", 1)
	node.start()
	leader := waitForConfiguration(t, []*testNode{node}, voters("solo"))
	writeBundle(t, leader, []*testNode{node})
	require.Len(t, node.logRecords("bootstrapped the cluster"), 1)
}

func TestBootstrapExpectMismatchWaits(t *testing.T) {
	expects := map[string]int{"n1": 3, "n2": 2, "n3": 3}
	nodes := startCluster(t, 3, func(node *testNode) {
		node.cfg.BootstrapExpect = expects[node.name]
	})
	waitFor(t, "n1 reports the conflicting bootstrap_expect of n2", func() bool {
		for _, record := range nodes[0].logRecords("bootstrap_expect is waiting") {
			if record["reason"] == "server n2 expects 2 servers and this node 3; set "+
				"the same bootstrap_expect on every initial server" {
				return true
			}
		}
		return false
	})
	waitFor(t, "n1 sees all three servers alive", func() bool {
		return len(memberNames(nodes[0], StatusAlive)) == 3
	})
	require.Never(t, func() bool {
		for _, node := range nodes {
			if node.store.HasExistingState() {
				return true
			}
		}
		return false
	}, 10*testInterval, testInterval/2, "no server may bootstrap with mismatched counts")
	for _, node := range nodes {
		require.Empty(t, node.logRecords("bootstrapped the cluster"), "node %s", node.name)
	}
}
