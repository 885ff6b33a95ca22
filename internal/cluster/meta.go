package cluster

import (
	"encoding/json"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// nodeMeta is the information a server publishes about itself in its memberlist
// node metadata, which memberlist limits to memberlist.MetaMaxSize bytes.
type nodeMeta struct {
	// RaftAddr is the address of the server's Raft transport.
	RaftAddr string `json:"raft_addr"`
	// RPCAddr is the address that other nodes forward requests to.
	RPCAddr string `json:"rpc_addr,omitempty"`
	// RaftState is 1 when the server has Raft state and 0 when it has never been
	// part of a cluster, so that bootstrap-expect can detect an existing cluster.
	RaftState int `json:"raft_state"`
	// Expect is the server's BootstrapExpect. Servers bootstrap together only when
	// they all expect the same number.
	Expect int `json:"expect"`
	// LastIndex is the server's last Raft log index, for the leader's check that a
	// non-voter is caught up.
	LastIndex uint64 `json:"last_index"`
	// Leaving is set from the start of a graceful leave. The leader removes a
	// leaving server from the Raft configuration.
	Leaving bool `json:"leaving,omitempty"`
}

func (meta nodeMeta) encode() ([]byte, error) {
	encoded, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode gossip metadata: %w", err)
	}
	if len(encoded) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("cluster: the gossip metadata %s has %d bytes, more than "+
			"the memberlist limit of %d; use shorter Raft and RPC addresses", encoded,
			len(encoded), memberlist.MetaMaxSize)
	}
	return encoded, nil
}

func decodeMeta(encoded []byte) (nodeMeta, error) {
	var meta nodeMeta
	if err := json.Unmarshal(encoded, &meta); err != nil {
		return nodeMeta{}, fmt.Errorf("decode gossip metadata %q: %w", encoded, err)
	}
	if meta.RaftAddr == "" {
		return nodeMeta{}, fmt.Errorf("the gossip metadata %q has no Raft address", encoded)
	}
	return meta, nil
}

// gossipDelegate hands memberlist this node's metadata. The manager keeps the
// encoded metadata current, so NodeMeta only copies it.
type gossipDelegate struct{ m *Manager }

func (d gossipDelegate) NodeMeta(limit int) []byte {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	if len(d.m.encodedMeta) > limit {
		// encode checked the length against memberlist.MetaMaxSize, the only limit
		// memberlist v0.5.4 passes, so this is a broken invariant.
		panic(fmt.Sprintf("cluster: gossip metadata of %d bytes exceeds the limit %d",
			len(d.m.encodedMeta), limit))
	}
	return append([]byte(nil), d.m.encodedMeta...)
}

// The manager sends no user messages and no state of its own beyond metadata.
func (gossipDelegate) NotifyMsg([]byte)                           {}
func (gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (gossipDelegate) LocalState(join bool) []byte                { return nil }
func (gossipDelegate) MergeRemoteState(buf []byte, join bool)     {}

// eventDelegate records memberlist's membership events in the member table.
// memberlist calls it with its node lock held, so it must not call back into
// memberlist.
type eventDelegate struct{ m *Manager }

func (d eventDelegate) NotifyJoin(node *memberlist.Node)   { d.m.recordJoin(node) }
func (d eventDelegate) NotifyLeave(node *memberlist.Node)  { d.m.recordLeave(node) }
func (d eventDelegate) NotifyUpdate(node *memberlist.Node) { d.m.recordUpdate(node) }
