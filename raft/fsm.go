package raft

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"
)

// snapshotVersion is the version member of a snapshot document.
const snapshotVersion = 2

// fsm is this node's copy of the replicated state. hashicorp/raft calls Apply,
// Snapshot, Restore and StoreConfiguration from one goroutine, and readers take
// copies under the read lock.
type fsm struct {
	logger  hclog.Logger
	changes *broadcaster[struct{}]

	mu    sync.RWMutex
	state state
	// index is the last log entry applied here. It differs from Raft's own
	// AppliedIndex, which is raised before the entries reach the FSM.
	index uint64
}

// snapshotDocument is the JSON form of a snapshot.
type snapshotDocument struct {
	Version int    `json:"version"`
	Index   uint64 `json:"index"`
	state
}

var (
	_ hraft.FSM                = (*fsm)(nil)
	_ hraft.ConfigurationStore = (*fsm)(nil)
)

func newFSM(logger hclog.Logger) *fsm {
	return &fsm{logger: logger, changes: newBroadcaster[struct{}](), state: newState()}
}

// Apply applies one command entry and returns nil or the error that rejected it.
// hashicorp/raft passes the returned value to the caller of Raft.Apply on the leader.
func (f *fsm) Apply(entry *hraft.Log) any {
	cmd, err := decodeCommand(entry.Data)
	f.mu.Lock()
	if err == nil {
		err = f.state.apply(cmd)
	}
	f.index = entry.Index
	f.mu.Unlock()

	if err != nil && cmd == nil {
		// NOTE: every node skips an entry it cannot decode, so nodes of one version
		// stay identical. In a cluster of mixed versions, the nodes that can decode
		// the entry diverge from those that cannot.
		f.logger.Error("skipped a log entry that this node cannot decode",
			"index", entry.Index, "error", err)
	}
	f.changes.publish(struct{}{})
	return err
}

// StoreConfiguration records the index of a membership change, so that the applied
// index also covers configuration entries.
func (f *fsm) StoreConfiguration(index uint64, _ hraft.Configuration) {
	f.mu.Lock()
	f.index = index
	f.mu.Unlock()
	f.changes.publish(struct{}{})
}

// Snapshot encodes the state right away, because Persist runs concurrently with
// later Apply calls.
func (f *fsm) Snapshot() (hraft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	doc := snapshotDocument{Version: snapshotVersion, Index: f.index, state: f.state}
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("raft: encode snapshot at index %d: %w", f.index, err)
	}
	return fsmSnapshot(data), nil
}

// Restore replaces the whole state with a snapshot.
func (f *fsm) Restore(snapshot io.ReadCloser) error {
	defer snapshot.Close()
	doc := snapshotDocument{state: newState()}
	if err := json.NewDecoder(snapshot).Decode(&doc); err != nil {
		return fmt.Errorf("raft: decode snapshot: %w", err)
	}
	if doc.Version != snapshotVersion {
		return fmt.Errorf("raft: snapshot version %d is not supported (this node reads "+
			"version %d); upgrade this node", doc.Version, snapshotVersion)
	}
	// A null member decodes to a nil map, which the transitions cannot write to.
	if doc.Federated == nil {
		doc.Federated = map[string]BundleRecord{}
	}
	if doc.Relationships == nil {
		doc.Relationships = map[string]Relationship{}
	}
	if doc.Statuses == nil {
		doc.Statuses = map[string]PeerStatus{}
	}
	f.mu.Lock()
	f.state = doc.state
	f.index = doc.Index
	f.mu.Unlock()
	f.logger.Info("restored state from snapshot", "index", doc.Index,
		"relationships", len(doc.Relationships), "federated_bundles", len(doc.Federated))
	f.changes.publish(struct{}{})
	return nil
}

// fsmSnapshot is a snapshot document already encoded.
type fsmSnapshot []byte

func (s fsmSnapshot) Persist(sink hraft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raft: write snapshot %s: %w", sink.ID(), err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("raft: close snapshot %s: %w", sink.ID(), err)
	}
	return nil
}

func (fsmSnapshot) Release() {}

func (f *fsm) appliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.index
}

func (f *fsm) localBundle() (BundleRecord, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.state.Local == nil {
		return BundleRecord{}, false
	}
	return f.state.Local.clone(), true
}

func (f *fsm) federatedBundle(td string) (BundleRecord, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	record, ok := f.state.Federated[td]
	return record.clone(), ok
}

func (f *fsm) federatedBundles() []BundleRecord {
	f.mu.RLock()
	defer f.mu.RUnlock()
	records := make([]BundleRecord, 0, len(f.state.Federated))
	for _, td := range slices.Sorted(maps.Keys(f.state.Federated)) {
		records = append(records, f.state.Federated[td].clone())
	}
	return records
}

func (f *fsm) relationship(td string) (Relationship, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	rel, ok := f.state.Relationships[td]
	return rel.clone(), ok
}

func (f *fsm) relationships() []Relationship {
	f.mu.RLock()
	defer f.mu.RUnlock()
	rels := make([]Relationship, 0, len(f.state.Relationships))
	for _, td := range slices.Sorted(maps.Keys(f.state.Relationships)) {
		rels = append(rels, f.state.Relationships[td].clone())
	}
	return rels
}

func (f *fsm) peerStatus(td string) (PeerStatus, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	status, ok := f.state.Statuses[td]
	return status, ok
}

func (f *fsm) peerStatuses() []PeerStatus {
	f.mu.RLock()
	defer f.mu.RUnlock()
	statuses := make([]PeerStatus, 0, len(f.state.Statuses))
	for _, td := range slices.Sorted(maps.Keys(f.state.Statuses)) {
		statuses = append(statuses, f.state.Statuses[td])
	}
	return statuses
}
