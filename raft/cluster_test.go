package raft

import (
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// clusterNodeConfig returns a configuration for one node of a multi-node cluster on
// loopback TCP. The timeouts are shorter than the hashicorp/raft defaults to keep
// the test fast, yet long enough that a loaded machine does not miss heartbeats.
func clusterNodeConfig(t *testing.T, nodeID string, bootstrap bool) Config {
	return Config{
		NodeID:             nodeID,
		DataDir:            t.TempDir(),
		BindAddr:           "127.0.0.1:0",
		Bootstrap:          bootstrap,
		Logger:             testLogger(t, nodeID),
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		TrailingLogs:       1,
	}
}

// requireConverged waits until follower has applied everything leader has and
// then compares what the two return to readers.
func requireConverged(t *testing.T, leader, follower *Store) {
	t.Helper()
	require.NoError(t, follower.WaitForApplied(testContext(t), leader.AppliedIndex()))
	require.Equal(t, viewOf(leader), viewOf(follower),
		"node %s differs from leader %s", follower.cfg.NodeID, leader.cfg.NodeID)
}

func addVoter(t *testing.T, leader, node *Store) {
	t.Helper()
	future := leader.Raft().AddVoter(hraft.ServerID(node.cfg.NodeID), node.Addr(), 0, waitLimit)
	require.NoError(t, future.Error())
}

func TestThreeNodeCluster(t *testing.T) {
	first := openStore(t, clusterNodeConfig(t, "n1", true))
	waitForLeadership(t, first)
	populate(t, first)
	// With one trailing log entry, the joining nodes cannot replay the log from the
	// start and must install the leader's snapshot, which exercises Restore.
	require.NoError(t, first.Snapshot())

	nodes := []*Store{first}
	for i := 2; i <= 3; i++ {
		node := openStore(t, clusterNodeConfig(t, fmt.Sprintf("n%d", i), false))
		addVoter(t, first, node)
		nodes = append(nodes, node)
	}
	status := peerStatus("org-b.test", 1)
	mustApply(t, first, PutPeerStatus{Status: status})
	mustApply(t, first, PutLocalBundle{Record: localRecord(3), PrevSequence: 2})

	for _, follower := range nodes[1:] {
		t.Run("follower "+follower.cfg.NodeID+" converges", func(t *testing.T) {
			requireConverged(t, first, follower)
			require.Equal(t, hraft.Follower, follower.State())
			require.False(t, follower.IsLeader())
			require.False(t, follower.LastContact().IsZero())
			leaderID, leaderAddr := follower.Leader()
			require.Equal(t, hraft.ServerID("n1"), leaderID)
			require.Equal(t, first.Addr(), leaderAddr)
			snaps, err := hraft.NewFileSnapshotStore(
				filepath.Join(follower.cfg.DataDir, "raft"), 1, io.Discard)
			require.NoError(t, err)
			installed, err := snaps.List()
			require.NoError(t, err)
			require.NotEmpty(t, installed, "the follower must have installed a snapshot")
		})
		t.Run("follower "+follower.cfg.NodeID+" rejects apply", func(t *testing.T) {
			before := viewOf(follower)
			err := follower.Apply(testContext(t), PutLocalBundle{Record: localRecord(4),
				PrevSequence: 3})
			require.ErrorIs(t, err, ErrNotLeader)
			require.ErrorContains(t, err, fmt.Sprintf(
				"the leader is n1 at %s, so send the request there", first.Addr()))
			require.Equal(t, before, viewOf(follower))
		})
	}

	t.Run("new leader after failover", func(t *testing.T) {
		require.NoError(t, first.Close())
		leader := waitForNewLeader(t, nodes[1:])
		mustApply(t, leader, DeleteRelationship{TrustDomain: "org-b.test"})
		mustApply(t, leader, PutLocalBundle{Record: localRecord(4), PrevSequence: 3})
		for _, node := range nodes[1:] {
			requireConverged(t, leader, node)
		}
		_, ok := leader.Relationship("org-b.test")
		require.False(t, ok)
		local, _ := leader.LocalBundle()
		require.Equal(t, uint64(4), local.Sequence)
	})
}

// waitForNewLeader waits until one of nodes leads and returns it. It watches the
// leader that the first node observes, which changes once the others elect one.
func waitForNewLeader(t *testing.T, nodes []*Store) *Store {
	t.Helper()
	observer := nodes[0]
	changes, cancel := observer.leaders.subscribe(nil)
	defer cancel()
	deadline := time.After(waitLimit)
	for {
		leaderID, _ := observer.Leader()
		for _, node := range nodes {
			if string(leaderID) == node.cfg.NodeID && node.IsLeader() {
				return node
			}
		}
		select {
		case <-changes:
		case <-deadline:
			t.Fatalf("no node of the remaining %d became leader within %s", len(nodes),
				waitLimit)
		}
	}
}
