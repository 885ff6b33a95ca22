package cluster

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDeadServerCleanupKeepsMinQuorum(t *testing.T) {
	// Bootstrap expect 3 makes MinQuorum 3, so of four voters one may be removed.
	nodes := startCluster(t, 3)
	waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))
	fourth := newTestNode(t, "n4", 0, nodes[0].gossipAddr())
	fourth.start()
	nodes = append(nodes, fourth)
	leader := waitForConfiguration(t, nodes, voters("n1", "n2", "n3", "n4"))

	victims := followers(nodes, leader)
	first, second := victims[0], victims[1]
	alive := without(nodes, first)

	t.Run("dead voter removed after grace", func(t *testing.T) {
		first.stop()
		want := voters(names(alive)...)
		leader = waitForConfiguration(t, alive, want)
		writeBundle(t, leader, alive)
		removed := leader.logRecords("removed server from the Raft configuration")
		require.Len(t, removed, 1)
		require.Equal(t, first.name, removed[0]["member"])
		require.Equal(t, "dead in gossip for longer than dead_server_grace",
			removed[0]["reason"])
		dead := deadFor(t, leader, first.name)
		require.GreaterOrEqual(t, dead, testDeadGrace.Seconds())
	})

	t.Run("removal below min quorum rejected", func(t *testing.T) {
		if second == leader {
			second = followers(alive, leader)[0]
		}
		second.stop()
		waitFor(t, "the leader rejects the removal of "+second.name, func() bool {
			return len(leader.logRecords("rejected the removal of a failed server "+
				"because fewer voters than min_quorum would remain; remove it by hand "+
				"once it is gone for good")) > 0
		})
		survivors := without(alive, second)
		// The dead voter stays, and the two survivors of three still commit.
		writeBundle(t, leader, survivors)
		require.Equal(t, voters(names(alive)...), suffrages(t, leader))
		require.Len(t, leader.logRecords("removed server from the Raft configuration"), 1)
	})
}

// deadFor returns how long member had failed, in seconds, when node removed it.
func deadFor(t *testing.T, node *testNode, member string) float64 {
	t.Helper()
	for _, record := range node.logRecords("removed server from the Raft configuration") {
		if record["member"] == member {
			return record["failed_for_seconds"].(float64)
		}
	}
	t.Fatalf("no removal of %s logged by %s", member, node.name)
	return 0
}

func followers(nodes []*testNode, leader *testNode) []*testNode {
	return without(nodes, leader)
}

func without(nodes []*testNode, excluded *testNode) []*testNode {
	var rest []*testNode
	for _, node := range nodes {
		if node != excluded {
			rest = append(rest, node)
		}
	}
	return rest
}

func names(nodes []*testNode) []string {
	var result []string
	for _, node := range nodes {
		result = append(result, node.name)
	}
	return result
}

func TestMissingServerRemovedAfterRestart(t *testing.T) {
	nodes := startCluster(t, 3)
	waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))
	fourth := newTestNode(t, "n4", 0, nodes[0].gossipAddr())
	fourth.start()
	waitForConfiguration(t, append(nodes, fourth), voters("n1", "n2", "n3", "n4"))

	// After a full stop only three servers return, so the new gossip pool never
	// hears of n4 and only the Raft configuration lists it.
	for _, node := range append(nodes, fourth) {
		node.stop()
	}
	nodes[0].start()
	for _, node := range nodes[1:] {
		node.cfg.Join = []string{nodes[0].gossipAddr()}
		node.start()
	}
	leader := waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))
	writeBundle(t, leader, nodes)
	removed := leader.logRecords("removed server from the Raft configuration")
	require.Len(t, removed, 1)
	require.Equal(t, "n4", removed[0]["member"])
	require.Equal(t, "missing from gossip for longer than dead_server_grace",
		removed[0]["reason"])
}

func TestHalfFailedVotersKept(t *testing.T) {
	lowQuorum := func(node *testNode) { node.cfg.MinQuorum = 1 }
	nodes := startCluster(t, 3, lowQuorum)
	waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))
	fourth := newTestNode(t, "n4", 0, nodes[0].gossipAddr())
	lowQuorum(fourth)
	fourth.start()
	nodes = append(nodes, fourth)
	leader := waitForConfiguration(t, nodes, voters("n1", "n2", "n3", "n4"))

	// Two voters stop gossiping but keep serving Raft, as when gossip traffic is
	// blocked: half the voters look failed although Raft replicates to all four.
	for _, node := range followers(nodes, leader)[:2] {
		require.NoError(t, node.manager.Shutdown())
	}
	waitFor(t, "the leader rejects removing half of the voters", func() bool {
		return len(leader.logRecords("rejected the removal of a failed server because "+
			"half or more of the voters look failed; check gossip connectivity of this "+
			"leader")) > 0
	})
	writeBundle(t, leader, nodes)
	require.Equal(t, voters("n1", "n2", "n3", "n4"), suffrages(t, leader))
	require.Empty(t, leader.logRecords("removed server from the Raft configuration"))
}
