package raft

import (
	"context"
	"errors"
	"fmt"
	"time"

	hraft "github.com/hashicorp/raft"
)

// LocalBundle returns a copy of the local trust domain's bundle.
func (s *Store) LocalBundle() (BundleRecord, bool) { return s.fsm.localBundle() }

// FederatedBundle returns a copy of the bundle stored for a foreign trust domain.
func (s *Store) FederatedBundle(td string) (BundleRecord, bool) {
	return s.fsm.federatedBundle(td)
}

// FederatedBundles returns copies of all foreign bundles, sorted by trust domain.
func (s *Store) FederatedBundles() []BundleRecord { return s.fsm.federatedBundles() }

// Relationship returns a copy of the relationship with a trust domain.
func (s *Store) Relationship(td string) (Relationship, bool) { return s.fsm.relationship(td) }

// Relationships returns copies of all relationships, sorted by trust domain.
func (s *Store) Relationships() []Relationship { return s.fsm.relationships() }

// PeerStatus returns the fetch status of a relationship.
func (s *Store) PeerStatus(td string) (PeerStatus, bool) { return s.fsm.peerStatus(td) }

// PeerStatuses returns all peer statuses, sorted by trust domain.
func (s *Store) PeerStatuses() []PeerStatus { return s.fsm.peerStatuses() }

// Subscribe returns a channel that receives a value after every log entry or
// snapshot this node applies and once when the state becomes current (see
// [Store.Current]), and a function that ends the subscription.
// Notifications coalesce: a subscriber that reads late gets one value for many
// entries, so it should reread the state it cares about. The channel is closed on
// cancel and on Close.
func (s *Store) Subscribe() (<-chan struct{}, func()) { return s.fsm.changes.subscribe(nil) }

// SubscribeLeadership returns a channel that first receives whether this node is
// the leader now and then every change, and a function that ends the subscription.
// A subscriber that reads late gets only the latest value. The channel is closed on
// cancel and on Close.
func (s *Store) SubscribeLeadership() (<-chan bool, func()) {
	return s.leadership.subscribe(s.IsLeader)
}

// IsLeader reports whether this node is the Raft leader.
func (s *Store) IsLeader() bool { return s.raft.State() == hraft.Leader }

// State returns this node's Raft state.
func (s *Store) State() hraft.RaftState { return s.raft.State() }

// Leader returns the ID and address of the leader that this node last heard from,
// both empty when no leader is known.
func (s *Store) Leader() (hraft.ServerID, hraft.ServerAddress) {
	addr, id := s.raft.LeaderWithID()
	return id, addr
}

// AppliedIndex returns the index of the last log entry this node's state machine
// applied: commands, membership changes and restored snapshots. The no-op entry a
// new leader writes is not counted, so the value can trail Raft's own index by it.
func (s *Store) AppliedIndex() uint64 { return s.fsm.appliedIndex() }

// LastContact returns when this node last heard from a leader; zero if never. It
// is meaningful on followers only.
func (s *Store) LastContact() time.Time { return s.raft.LastContact() }

// Addr returns the address peers use to reach this node's transport, the address
// to pass to AddVoter.
func (s *Store) Addr() hraft.ServerAddress { return s.transport.LocalAddr() }

// Raft returns the underlying Raft node, for membership changes and statistics.
func (s *Store) Raft() *hraft.Raft { return s.raft }

// WaitForLeader blocks until this node has heard from a leader or is the leader.
func (s *Store) WaitForLeader(ctx context.Context) error {
	changes, cancel := s.leaders.subscribe(nil)
	defer cancel()
	for {
		if _, id := s.raft.LeaderWithID(); id != "" {
			return nil
		}
		select {
		case _, open := <-changes:
			if !open {
				return fmt.Errorf("raft: node %s closed while waiting for a leader",
					s.cfg.NodeID)
			}
		case <-ctx.Done():
			return fmt.Errorf("raft: no leader is known to node %s: %w; check that a majority "+
				"of the voters is running and reachable", s.cfg.NodeID, contextError(ctx))
		}
	}
}

// WaitForApplied blocks until this node's state machine applied the log entry at
// index, for example the AppliedIndex of another node.
func (s *Store) WaitForApplied(ctx context.Context, index uint64) error {
	changes, cancel := s.Subscribe()
	defer cancel()
	for {
		if s.AppliedIndex() >= index {
			return nil
		}
		select {
		case _, open := <-changes:
			if !open {
				return fmt.Errorf("raft: node %s closed while waiting for index %d",
					s.cfg.NodeID, index)
			}
		case <-ctx.Done():
			return fmt.Errorf("raft: node %s applied index %d, not %d: %w; check that it "+
				"is connected to the leader", s.cfg.NodeID, s.AppliedIndex(), index,
				contextError(ctx))
		}
	}
}

// Snapshot makes Raft take a snapshot now and compact the log. It returns nil when
// the latest snapshot already covers every applied entry.
func (s *Store) Snapshot() error {
	err := s.raft.Snapshot().Error()
	if err == nil || errors.Is(err, hraft.ErrNothingNewToSnapshot) {
		return nil
	}
	return fmt.Errorf("raft: take a snapshot on node %s: %w", s.cfg.NodeID, err)
}
