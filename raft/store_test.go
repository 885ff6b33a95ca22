package raft

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestReopenAfterClose(t *testing.T) {
	dir := t.TempDir()
	cfg := singleNodeConfig(t, "n1", dir)
	s := openLeader(t, cfg)
	populate(t, s)
	want := viewOf(s)
	index := s.AppliedIndex()
	require.NoError(t, s.Close())
	require.FileExists(t, filepath.Join(dir, "raft", "raft.db"))

	reopened := openLeader(t, cfg)
	require.NoError(t, reopened.WaitForApplied(testContext(t), index))
	require.Equal(t, want, viewOf(reopened))

	future := reopened.Raft().GetConfiguration()
	require.NoError(t, future.Error())
	servers := future.Configuration().Servers
	require.Len(t, servers, 1, "a node with state must not bootstrap again")
	require.Equal(t, hraft.ServerID("n1"), servers[0].ID)

	mustApply(t, reopened, PutLocalBundle{Record: localRecord(3), PrevSequence: 2})
	local, _ := reopened.LocalBundle()
	require.Equal(t, uint64(3), local.Sequence)
}

func TestReopenFromSnapshotAndLog(t *testing.T) {
	dir := t.TempDir()
	cfg := singleNodeConfig(t, "n1", dir)
	// One trailing entry makes the snapshot the only record of the earlier
	// entries, so the reopened state must come from it.
	cfg.TrailingLogs = 1
	s := openLeader(t, cfg)
	populate(t, s)
	require.NoError(t, s.Snapshot())
	first, err := s.logs.FirstIndex()
	require.NoError(t, err)
	// Index 1 is the bootstrap configuration, 2 the leader's no-op and 3 the first
	// command, so a first index above 3 means commands exist only in the snapshot.
	require.Greater(t, first, uint64(3), "the snapshot must compact the log")

	status := peerStatus("org-b.test", 2)
	mustApply(t, s, PutFederatedBundle{Record: federatedRecord("org-b.test", 4, SourceFetched),
		Status: &status})
	mustApply(t, s, DeleteRelationship{TrustDomain: "org-a.test"})
	mustApply(t, s, PutLocalBundle{Record: localRecord(3), PrevSequence: 2})
	want := viewOf(s)
	index := s.AppliedIndex()
	require.NoError(t, s.Close())

	snaps, err := hraft.NewFileSnapshotStore(filepath.Join(dir, "raft"), 1, os.Stderr)
	require.NoError(t, err)
	metas, err := snaps.List()
	require.NoError(t, err)
	require.Len(t, metas, 1)

	reopened := openLeader(t, cfg)
	require.NoError(t, reopened.WaitForApplied(testContext(t), index))
	require.Equal(t, want, viewOf(reopened))
	got, _ := reopened.PeerStatus("org-b.test")
	require.Equal(t, uint64(4), got.LastFetchedSequence)
}

func TestSnapshotRetainCount(t *testing.T) {
	dir := t.TempDir()
	cfg := singleNodeConfig(t, "n1", dir)
	cfg.SnapshotRetain = 2
	s := openLeader(t, cfg)
	for sequence := uint64(1); sequence <= 4; sequence++ {
		mustApply(t, s, PutLocalBundle{Record: localRecord(sequence), PrevSequence: sequence - 1})
		require.NoError(t, s.Snapshot())
	}
	require.NoError(t, s.Snapshot(), "a snapshot with nothing new is not an error")

	entries, err := os.ReadDir(filepath.Join(dir, "raft", "snapshots"))
	require.NoError(t, err)
	require.Len(t, entries, 2)
}

func TestCloseReleasesDatabaseAndPort(t *testing.T) {
	dir := t.TempDir()
	cfg := singleNodeConfig(t, "n1", dir)
	cfg.BoltOpenTimeout = 200 * time.Millisecond
	s := openLeader(t, cfg)
	populate(t, s)

	_, err := Open(cfg)
	require.ErrorContains(t, err, "another process is using the data directory")

	addr := string(s.Addr())
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "a second Close returns the first result")

	cfg.BindAddr = addr
	reopened := openLeader(t, cfg)
	require.Equal(t, addr, string(reopened.Addr()), "Close must release the port")
	_, leaderAddr := reopened.Leader()
	require.Equal(t, reopened.Addr(), leaderAddr)
}

// requireClosed drains ch and fails unless it is closed within waitLimit.
func requireClosed[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case _, open := <-ch:
			if !open {
				return
			}
		case <-deadline:
			t.Fatalf("channel still open after %s", waitLimit)
		}
	}
}

func TestSubscribeAfterApply(t *testing.T) {
	s := openLeader(t, singleNodeConfig(t, "n1", t.TempDir()))
	changes, cancel := s.Subscribe()
	mustApply(t, s, PutLocalBundle{Record: localRecord(1)})
	select {
	case _, open := <-changes:
		require.True(t, open)
	case <-time.After(waitLimit):
		t.Fatal("no notification after an applied entry")
	}
	local, ok := s.LocalBundle()
	require.True(t, ok, "the state is updated before the notification")
	require.Equal(t, uint64(1), local.Sequence)

	cancel()
	requireClosed(t, changes)

	other, _ := s.Subscribe()
	leadership, _ := s.SubscribeLeadership()
	require.NoError(t, s.Close())
	requireClosed(t, other)
	requireClosed(t, leadership)
}

func TestFollowerWithoutLeader(t *testing.T) {
	cfg := singleNodeConfig(t, "n1", t.TempDir())
	cfg.Bootstrap = false
	s := openStore(t, cfg)

	leadership, cancel := s.SubscribeLeadership()
	defer cancel()
	require.False(t, <-leadership)

	err := s.Apply(testContext(t), PutLocalBundle{Record: localRecord(1)})
	require.ErrorIs(t, err, ErrNotLeader)
	require.ErrorContains(t, err, "no leader is known")

	ctx, stop := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer stop()
	err = s.WaitForLeader(ctx)
	require.ErrorIs(t, err, ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	ctx, stop = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer stop()
	err = s.WaitForApplied(ctx, 10)
	require.ErrorIs(t, err, ErrTimeout)
	require.ErrorContains(t, err, "applied index 0, not 10")
}

func TestOpenRejectsInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"missing node ID", func(c *Config) { c.NodeID = "" }, "the node ID is empty"},
		{"missing data directory", func(c *Config) { c.DataDir = "" },
			"the data directory is empty"},
		{"missing bind address", func(c *Config) { c.BindAddr = "" },
			"the bind address is empty"},
		{"negative apply timeout", func(c *Config) { c.ApplyTimeout = -time.Second },
			"the apply timeout is -1s"},
		{"negative snapshot retain", func(c *Config) { c.SnapshotRetain = -1 },
			"the snapshot retain count is -1"},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = time.Second },
			"invalid Raft settings for node n1"},
		{"unresolvable advertise address", func(c *Config) { c.AdvertiseAddr = "no-port" },
			`resolve the advertise address "no-port"`},
		{"all interfaces without advertise", func(c *Config) { c.BindAddr = "0.0.0.0:0" },
			"set an advertise address when binding to all interfaces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := singleNodeConfig(t, "n1", dir)
			tt.change(&cfg)
			_, err := Open(cfg)
			require.ErrorContains(t, err, tt.want)
		})
	}
	s := openLeader(t, singleNodeConfig(t, "n1", dir))
	require.True(t, s.IsLeader(), "failed opens must release the database")
}
