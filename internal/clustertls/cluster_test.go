package clustertls

import (
	"slices"
	"testing"

	hraft "github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestRaftClusterReplicatesOverTLS(t *testing.T) {
	ca := newTestCA(t)
	nodes := startCluster(t, ca)
	leader := waitForLeader(t, nodes)
	want := []string{"entry-1", "entry-2", "entry-3"}
	applyAll(t, leader, want...)
	waitForEntries(t, nodes, want)
	for _, node := range nodes {
		stats := node.layer.Stats()
		require.Zero(t, stats.HandshakeFailures, "%s", node.id)
		require.Zero(t, stats.DialFailures, "%s", node.id)
		if node != leader {
			require.NotZero(t, stats.HandshakesCompleted,
				"follower %s accepted no TLS connection from the leader", node.id)
		}
	}

	// The remaining two elect a new leader over TLS and keep replicating.
	require.NoError(t, leader.raft.Shutdown().Error())
	rest := slices.DeleteFunc(slices.Clone(nodes), func(n *raftNode) bool {
		return n == leader
	})
	newLeader := waitForLeader(t, rest)
	require.NotEqual(t, leader.id, newLeader.id)
	applyAll(t, newLeader, "entry-4")
	waitForEntries(t, rest, append(want, "entry-4"))
}

func TestRaftRejectsNodeOfAnotherCA(t *testing.T) {
	ca := newTestCA(t)
	nodes := startCluster(t, ca)
	leader := waitForLeader(t, nodes)
	applyAll(t, leader, "before")
	waitForEntries(t, nodes, []string{"before"})
	term := leader.raft.CurrentTerm()

	// A node whose certificate is valid but issued by another CA.
	rogue := startRaftNode(t, "rogue", newTestCA(t).node(t, "rogue"))
	err := leader.raft.AddVoter(rogue.id, rogue.address(), 0, waitFor).Error()
	// node-1 to node-3 are a majority of the four voters, so the membership change
	// commits without the rogue node. What matters is that it receives nothing.
	require.NoError(t, err)
	applyAll(t, leader, "after")
	waitForEntries(t, nodes, []string{"before", "after"})
	require.Eventually(t, func() bool {
		return rogue.layer.Stats().HandshakeFailures >= 2 &&
			leader.layer.Stats().DialFailures >= 2
	}, waitFor, pollEvery, "the leader never tried to replicate to the rogue node")
	require.Zero(t, rogue.raft.LastIndex(), "the rogue node received log entries")
	require.Empty(t, rogue.fsm.Entries())
	require.Empty(t, logData(t, rogue))

	// The rogue node's own RPCs fail at the TLS layer: a vote request for a much
	// higher term and an AppendEntries that would overwrite the log.
	for _, node := range nodes {
		vote := hraft.RequestVoteRequest{
			RPCHeader: rpcHeader(rogue), Term: term + 100,
			LastLogIndex: 1000, LastLogTerm: term + 99,
		}
		err := rogue.transport.RequestVote(node.id, node.address(), &vote,
			&hraft.RequestVoteResponse{})
		require.Error(t, err, "vote request to %s", node.id)
		err = rogue.transport.AppendEntries(node.id, node.address(),
			forgedAppend(rogue, node, term), &hraft.AppendEntriesResponse{})
		require.Error(t, err, "AppendEntries to %s", node.id)
	}
	for _, node := range nodes {
		require.Equal(t, term, node.raft.CurrentTerm(), "%s changed term", node.id)
		require.NotContains(t, logData(t, node), "rogue-entry", "%s", node.id)
		require.Equal(t, []string{"before", "after"}, node.fsm.Entries(), "%s", node.id)
	}
	require.Equal(t, hraft.Leader, leader.raft.State())

	// Raft itself authenticates nothing: the same forged AppendEntries from a
	// node with this cluster's CA is accepted by a follower. So the rejections
	// above come from the certificate alone.
	probe := startRaftNode(t, "probe", ca.node(t, "probe"))
	follower := nodes[slices.IndexFunc(nodes, func(n *raftNode) bool {
		return n != leader
	})]
	var resp hraft.AppendEntriesResponse
	require.NoError(t, probe.transport.AppendEntries(follower.id, follower.address(),
		forgedAppend(probe, follower, term), &resp))
	require.True(t, resp.Success)
	require.Contains(t, logData(t, follower), "rogue-entry")
}

func rpcHeader(from *raftNode) hraft.RPCHeader {
	return hraft.RPCHeader{ProtocolVersion: hraft.ProtocolVersionMax,
		ID: []byte(from.id), Addr: []byte(from.address())}
}

// forgedAppend is an AppendEntries request that claims a term 100 higher than
// the cluster's and appends "rogue-entry" after the target's last entry.
func forgedAppend(from, to *raftNode, term uint64) *hraft.AppendEntriesRequest {
	last := to.raft.LastIndex()
	return &hraft.AppendEntriesRequest{
		RPCHeader: rpcHeader(from), Term: term + 100,
		PrevLogEntry: last, PrevLogTerm: term,
		Entries: []*hraft.Log{{Index: last + 1, Term: term + 100,
			Type: hraft.LogCommand, Data: []byte("rogue-entry")}},
		LeaderCommitIndex: last + 1,
	}
}

func TestRaftForeignVoterNeverAcknowledges(t *testing.T) {
	ca := newTestCA(t)
	first := startRaftNode(t, "node-1", ca.node(t, "node-1"))
	err := first.raft.BootstrapCluster(hraft.Configuration{Servers: []hraft.Server{
		{Suffrage: hraft.Voter, ID: first.id, Address: first.address()},
	}}).Error()
	require.NoError(t, err)
	leader := waitForLeader(t, []*raftNode{first})
	applyAll(t, leader, "before")

	// hashicorp/raft commits a membership change under the old configuration,
	// so AddVoter returns at once. From then on every commit needs both voters,
	// and the foreign node can acknowledge nothing.
	rogue := startRaftNode(t, "rogue", newTestCA(t).node(t, "rogue"))
	require.NoError(t, leader.raft.AddVoter(rogue.id, rogue.address(), 0, waitFor).Error())
	err = leader.raft.Apply([]byte("after"), waitFor).Error()
	require.ErrorIs(t, err, hraft.ErrLeadershipLost,
		"the leader must step down without a quorum")
	require.Equal(t, []string{"before"}, leader.fsm.Entries())
	require.Zero(t, rogue.raft.LastIndex())
	require.Empty(t, rogue.fsm.Entries())
	require.NotZero(t, rogue.layer.Stats().HandshakeFailures)
}
