package raft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	hraft "github.com/hashicorp/raft"
)

// StateSnapshot is a copy of the whole replicated state, for operator backups.
type StateSnapshot struct {
	// Index is the last log index applied to the state.
	Index uint64
	// Data is a snapshot document, the same form as Raft's own snapshots.
	Data []byte
}

// SaveState returns the node's whole state as a snapshot document.
func (s *Store) SaveState() (StateSnapshot, error) {
	snap, err := s.fsm.Snapshot()
	if err != nil {
		return StateSnapshot{}, err
	}
	data := []byte(snap.(fsmSnapshot))
	var doc struct {
		Index uint64 `json:"index"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return StateSnapshot{}, fmt.Errorf("raft: read index of the snapshot: %w", err)
	}
	return StateSnapshot{Index: doc.Index, Data: data}, nil
}

// RestoreState replaces the state of the whole cluster with a document from
// SaveState. It runs on the leader only; hashicorp/raft installs the state as a new
// snapshot and sends it to the followers. The Raft configuration is kept.
func (s *Store) RestoreState(data []byte, timeout time.Duration) error {
	var doc snapshotDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("raft: the snapshot is not a bundlex state document: %w", err)
	}
	if doc.Version != snapshotVersion {
		return fmt.Errorf("raft: snapshot version %d is not supported (this node reads "+
			"version %d)", doc.Version, snapshotVersion)
	}
	if s.raft.State() != hraft.Leader {
		return fmt.Errorf("raft: %w: node %s cannot restore a snapshot; run the restore on "+
			"the leader", ErrNotLeader, s.cfg.NodeID)
	}
	meta := &hraft.SnapshotMeta{
		Version: hraft.SnapshotVersionMax,
		Index:   doc.Index,
		Term:    1,
		Size:    int64(len(data)),
	}
	if err := s.raft.Restore(meta, bytes.NewReader(data), timeout); err != nil {
		return fmt.Errorf("raft: restore snapshot at index %d: %w", doc.Index, err)
	}
	return nil
}
