package raft

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/stretchr/testify/require"
)

// applyLocalSequences raises the local bundle from sequence from+1 to to, one
// compare-and-set entry each.
func applyLocalSequences(t *testing.T, s *Store, from, to uint64) {
	t.Helper()
	for sequence := from + 1; sequence <= to; sequence++ {
		mustApply(t, s, PutLocalBundle{Record: localRecord(sequence), PrevSequence: sequence - 1})
	}
}

// readUntilCurrent reads the local bundle in a loop from right after Open until
// the state is current and returns the sequences seen through the gate (read
// after IsCurrent returned true) and the lowest sequence seen before it.
func readUntilCurrent(t *testing.T, s *Store) (gated []uint64, lowestUngated uint64) {
	t.Helper()
	lowestUngated = ^uint64(0)
	deadline := time.Now().Add(waitLimit)
	for {
		current := s.IsCurrent()
		rec, ok := s.LocalBundle()
		switch {
		case current && ok:
			gated = append(gated, rec.Sequence)
		case current:
			gated = append(gated, 0)
		case ok:
			lowestUngated = min(lowestUngated, rec.Sequence)
		}
		// A few reads after the gate opened show that it stays open.
		if len(gated) >= 100 {
			return gated, lowestUngated
		}
		if time.Now().After(deadline) {
			t.Fatalf("the state of node %s is not current after %s: %s", s.cfg.NodeID,
				waitLimit, s.NotCurrentReason())
		}
		runtime.Gosched()
	}
}

func TestCurrentAfterReopenHidesReplay(t *testing.T) {
	const (
		snapshotAt = 50
		last       = 250
	)
	dir := t.TempDir()
	cfg := singleNodeConfig(t, "n1", dir)
	s := openLeader(t, cfg)
	require.NoError(t, s.WaitCurrent(testContext(t)))
	applyLocalSequences(t, s, 0, snapshotAt)
	// The reopened node restores the snapshot and replays the entries after it,
	// so the replay passes through every sequence from snapshotAt to last.
	require.NoError(t, s.Snapshot())
	applyLocalSequences(t, s, snapshotAt, last)
	require.NoError(t, s.Close())

	reopened := openStore(t, cfg)
	gated, lowestUngated := readUntilCurrent(t, reopened)
	for i, sequence := range gated {
		require.Equal(t, uint64(last), sequence, "read %d through the gate", i)
	}
	t.Logf("lowest sequence read before the state was current: %d", lowestUngated)
	require.Empty(t, reopened.NotCurrentReason())
	require.NoError(t, reopened.WaitCurrent(testContext(t)))
}

func TestCurrentNotifiesSubscribers(t *testing.T) {
	dir := t.TempDir()
	cfg := singleNodeConfig(t, "n1", dir)
	s := openLeader(t, cfg)
	applyLocalSequences(t, s, 0, 3)
	require.NoError(t, s.Close())

	reopened := openStore(t, cfg)
	changes, cancel := reopened.Subscribe()
	defer cancel()
	deadline := time.After(waitLimit)
	// A reader that waits on the subscription alone, as the bundle endpoint
	// does, must wake once the state is current and then read the last state.
	for !reopened.IsCurrent() {
		select {
		case <-changes:
		case <-deadline:
			t.Fatalf("no notification made the state current within %s: %s", waitLimit,
				reopened.NotCurrentReason())
		}
	}
	local, ok := reopened.LocalBundle()
	require.True(t, ok)
	require.Equal(t, uint64(3), local.Sequence)
}

func TestCurrentOnFreshBootstrap(t *testing.T) {
	s := openStore(t, singleNodeConfig(t, "n1", t.TempDir()))
	require.NoError(t, s.WaitCurrent(testContext(t)))
	require.True(t, s.IsLeader(), "a single voter is current once it leads")
	_, ok := s.LocalBundle()
	require.False(t, ok)
	select {
	case <-s.Current():
	default:
		t.Fatal("the Current channel is open although WaitCurrent returned")
	}
}

func TestCurrentFromSnapshotOnly(t *testing.T) {
	dir := t.TempDir()
	cfg := singleNodeConfig(t, "n1", dir)
	cfg.TrailingLogs = 1
	s := openLeader(t, cfg)
	populate(t, s)
	want := viewOf(s)
	require.NoError(t, s.Snapshot())
	require.NoError(t, s.Close())

	reopened := openStore(t, cfg)
	require.NoError(t, reopened.WaitCurrent(testContext(t)))
	require.Equal(t, want, viewOf(reopened))
}

func TestCurrentWaitsForLeader(t *testing.T) {
	cfg := singleNodeConfig(t, "n1", t.TempDir())
	cfg.Bootstrap = false
	s := openStore(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := s.WaitCurrent(ctx)
	require.ErrorIs(t, err, ErrTimeout)
	require.ErrorContains(t, err, "no Raft leader is known yet")
	require.False(t, s.IsCurrent())
	require.Equal(t, "no Raft leader is known yet", s.NotCurrentReason())

	require.NoError(t, s.Close())
	require.ErrorContains(t, s.WaitCurrent(context.Background()),
		"node n1 closed before its state caught up")
}

// appendUncommittedEntry appends cmd to the log of a closed node in the node's
// last term, as a leader does before it loses contact with its followers, and
// returns the entry's index.
func appendUncommittedEntry(t *testing.T, dataDir string, cmd Command) uint64 {
	t.Helper()
	prepared, err := cmd.prepare()
	require.NoError(t, err)
	data, err := encodeCommand(prepared)
	require.NoError(t, err)
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(dataDir, "raft", "raft.db")})
	require.NoError(t, err)
	defer func() { require.NoError(t, bolt.Close()) }()
	last, err := bolt.LastIndex()
	require.NoError(t, err)
	var lastEntry hraft.Log
	require.NoError(t, bolt.GetLog(last, &lastEntry))
	entry := &hraft.Log{Index: last + 1, Term: lastEntry.Term, Type: hraft.LogCommand,
		Data: data, AppendedAt: time.Now()}
	require.NoError(t, bolt.StoreLog(entry))
	return entry.Index
}

// TestCurrentAfterTruncatedTail restarts a node whose log ends in an entry that
// was never committed. The new leader overwrites that index with its no-op entry
// and writes nothing else, so the node's state machine never reaches the index of
// the last command in its log. It must become current all the same, without the
// lost entry.
func TestCurrentAfterTruncatedTail(t *testing.T) {
	configs := []Config{clusterNodeConfig(t, "n1", true), clusterNodeConfig(t, "n2", false),
		clusterNodeConfig(t, "n3", false)}
	first := openStore(t, configs[0])
	waitForLeadership(t, first)
	nodes := []*Store{first}
	for _, cfg := range configs[1:] {
		node := openStore(t, cfg)
		addVoter(t, first, node)
		nodes = append(nodes, node)
	}
	populate(t, first)
	for i, node := range nodes {
		require.NoError(t, node.WaitCurrent(testContext(t)), "node %s", node.cfg.NodeID)
		requireConverged(t, first, node)
		// Reopen every node on the address the Raft configuration holds.
		configs[i].BindAddr = string(node.Addr())
	}
	want := viewOf(first)
	for _, node := range nodes {
		require.NoError(t, node.Close())
	}

	lost := appendUncommittedEntry(t, configs[0].DataDir,
		PutLocalBundle{Record: localRecord(3), PrevSequence: 2})

	// n2 and n3 form a quorum without n1, and their leader commits its no-op entry
	// at the index of the lost entry before n1 is back. n1 cannot win an election
	// then, because its last entry is of an older term.
	survivors := []*Store{openStore(t, configs[1]), openStore(t, configs[2])}
	leader := waitForNewLeader(t, survivors)
	require.NoError(t, leader.WaitCurrent(testContext(t)))
	require.GreaterOrEqual(t, leader.Raft().CommitIndex(), lost,
		"the new leader's no-op entry must reach the index of the lost entry")

	restarted := openStore(t, configs[0])
	require.NoError(t, restarted.WaitCurrent(testContext(t)), "state of the restarted node")
	require.Equal(t, want, viewOf(restarted), "the lost entry must not be applied")
	require.Less(t, restarted.AppliedIndex(), lost,
		"the state machine never applied the index of the lost entry")
	var entry hraft.Log
	require.NoError(t, restarted.logs.GetLog(lost, &entry))
	require.Equal(t, hraft.LogNoop, entry.Type,
		fmt.Sprintf("the leader's no-op entry replaced the lost entry at index %d", lost))
}
