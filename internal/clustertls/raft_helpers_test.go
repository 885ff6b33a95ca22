package clustertls

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bundlex/bundlex/internal/telemetry"
	hraft "github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// listFSM appends every applied entry's data to a list. The real bundlex FSM is
// tested in package raft; this one only shows what reached each node.
type listFSM struct {
	mu      sync.Mutex
	entries []string
}

func (f *listFSM) Apply(entry *hraft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, string(entry.Data))
	return len(f.entries)
}

func (f *listFSM) Entries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.entries)
}

func (f *listFSM) Snapshot() (hraft.FSMSnapshot, error) {
	return listSnapshot(f.Entries()), nil
}

func (f *listFSM) Restore(snapshot io.ReadCloser) error {
	defer snapshot.Close()
	var entries []string
	if err := json.NewDecoder(snapshot).Decode(&entries); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = entries
	return nil
}

type listSnapshot []string

func (s listSnapshot) Persist(sink hraft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode([]string(s)); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (listSnapshot) Release() {}

// raftNode is one hashicorp/raft node on a TLS stream layer with in-memory log,
// stable and snapshot stores.
type raftNode struct {
	id        hraft.ServerID
	layer     *StreamLayer
	transport *hraft.NetworkTransport
	logs      *hraft.InmemStore
	fsm       *listFSM
	raft      *hraft.Raft
}

func (n *raftNode) address() hraft.ServerAddress {
	return n.transport.LocalAddr()
}

// startRaftNode starts a node named id with the given certificate files.
// Timeouts are shorter than hashicorp/raft's defaults so that loopback
// elections take well under a second.
func startRaftNode(t *testing.T, id string, files nodeFiles) *raftNode {
	t.Helper()
	layer, logs := startLayer(t, files, nil)
	hclogger := telemetry.HCLogger(slogTo(logs), "raft")
	node := &raftNode{
		id: hraft.ServerID(id), layer: layer, logs: hraft.NewInmemStore(),
		fsm:       &listFSM{},
		transport: NewTransport(layer, 3, 5*time.Second, hclogger.Named("net")),
	}
	conf := hraft.DefaultConfig()
	conf.LocalID = node.id
	conf.HeartbeatTimeout = 300 * time.Millisecond
	conf.ElectionTimeout = 300 * time.Millisecond
	conf.LeaderLeaseTimeout = 150 * time.Millisecond
	conf.CommitTimeout = 10 * time.Millisecond
	conf.Logger = hclogger
	var err error
	node.raft, err = hraft.NewRaft(conf, node.fsm, node.logs, node.logs,
		hraft.NewInmemSnapshotStore(), node.transport)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, node.raft.Shutdown().Error()) })
	return node
}

// startCluster starts a three-node cluster: node-1 bootstraps alone and adds
// the others with AddVoter, as a real cluster grows.
func startCluster(t *testing.T, ca testCA) []*raftNode {
	t.Helper()
	var nodes []*raftNode
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("node-%d", i)
		nodes = append(nodes, startRaftNode(t, name, ca.node(t, name)))
	}
	first := nodes[0]
	err := first.raft.BootstrapCluster(hraft.Configuration{Servers: []hraft.Server{
		{Suffrage: hraft.Voter, ID: first.id, Address: first.address()},
	}}).Error()
	require.NoError(t, err)
	leader := waitForLeader(t, nodes[:1])
	for _, node := range nodes[1:] {
		err := leader.raft.AddVoter(node.id, node.address(), 0, waitFor).Error()
		require.NoError(t, err, "add %s as a voter", node.id)
	}
	return nodes
}

// waitForLeader waits until exactly one of nodes is leader and every node
// follows it.
func waitForLeader(t *testing.T, nodes []*raftNode) *raftNode {
	t.Helper()
	var leader *raftNode
	require.Eventually(t, func() bool {
		leader = nil
		for _, node := range nodes {
			if node.raft.State() == hraft.Leader {
				if leader != nil {
					return false
				}
				leader = node
			}
		}
		if leader == nil {
			return false
		}
		for _, node := range nodes {
			if _, id := node.raft.LeaderWithID(); id != leader.id {
				return false
			}
		}
		return true
	}, waitFor, pollEvery, "no single leader among %d nodes", len(nodes))
	return leader
}

func applyAll(t *testing.T, leader *raftNode, entries ...string) {
	t.Helper()
	for _, entry := range entries {
		require.NoError(t, leader.raft.Apply([]byte(entry), waitFor).Error(),
			"apply %q", entry)
	}
}

// waitForEntries waits until every node's FSM holds exactly want.
func waitForEntries(t *testing.T, nodes []*raftNode, want []string) {
	t.Helper()
	for _, node := range nodes {
		require.Eventually(t, func() bool {
			return slices.Equal(node.fsm.Entries(), want)
		}, waitFor, pollEvery, "%s has %q, want %q", node.id, node.fsm.Entries(), want)
	}
}

// logData returns the data of every entry in the node's log store.
func logData(t *testing.T, node *raftNode) []string {
	t.Helper()
	first, err := node.logs.FirstIndex()
	require.NoError(t, err)
	last, err := node.logs.LastIndex()
	require.NoError(t, err)
	var data []string
	for index := first; index <= last && index > 0; index++ {
		var entry hraft.Log
		require.NoError(t, node.logs.GetLog(index, &entry))
		data = append(data, string(entry.Data))
	}
	return data
}
