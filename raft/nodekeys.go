package raft

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// NodeKeys is the public half of one node's authority: every node of a cluster
// keeps its own CA and JWT keys on its own disk and publishes only their public
// parts here. The leader publishes the union of all nodes' keys as the local
// bundle, so the endpoint certificate of any node verifies against that bundle.
type NodeKeys struct {
	Node string `json:"node"`
	// Document is a SPIFFE bundle document with the node's public keys.
	Document json.RawMessage `json:"document"`
	// RetireAt is when the keys may leave the local bundle if the node stops
	// updating them: no SVID signed by them is valid after it (SPIFFE Federation 4.1).
	RetireAt  time.Time `json:"retire_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (k NodeKeys) clone() NodeKeys {
	k.Document = slices.Clone(k.Document)
	return k
}

// PutNodeKeys stores or replaces one node's public keys.
type PutNodeKeys struct {
	Keys NodeKeys `json:"keys"`
}

// DeleteNodeKeys removes one node's public keys; [ErrNotFound] when none are stored.
type DeleteNodeKeys struct {
	Node string `json:"node"`
}

func (PutNodeKeys) kind() commandKind    { return kindPutNodeKeys }
func (DeleteNodeKeys) kind() commandKind { return kindDeleteNodeKeys }

// trustDomain names the node for messages: node keys belong to the local trust domain.
func (c PutNodeKeys) trustDomain() string    { return "node " + c.Keys.Node }
func (c DeleteNodeKeys) trustDomain() string { return "node " + c.Node }

func (c PutNodeKeys) prepare() (Command, error) {
	switch {
	case c.Keys.Node == "":
		return nil, invalidCommand(c, "the node name is empty")
	case len(c.Keys.Document) == 0:
		return nil, invalidCommand(c, "the key document is empty")
	case !json.Valid(c.Keys.Document):
		return nil, invalidCommand(c, "the key document is not JSON")
	}
	return c, nil
}

func (c DeleteNodeKeys) prepare() (Command, error) {
	if c.Node == "" {
		return nil, invalidCommand(c, "the node name is empty")
	}
	return c, nil
}

func (st *state) putNodeKeys(c PutNodeKeys) error {
	if st.NodeKeys == nil {
		st.NodeKeys = map[string]NodeKeys{}
	}
	st.NodeKeys[c.Keys.Node] = c.Keys.clone()
	return nil
}

func (st *state) deleteNodeKeys(c DeleteNodeKeys) error {
	if _, ok := st.NodeKeys[c.Node]; !ok {
		return fmt.Errorf("raft: %w: no keys are stored for node %s", ErrNotFound, c.Node)
	}
	delete(st.NodeKeys, c.Node)
	return nil
}

// NodeKeys returns every node's public keys, sorted by node name.
func (s *Store) NodeKeys() []NodeKeys {
	f := s.fsm
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]NodeKeys, 0, len(f.state.NodeKeys))
	for _, node := range slices.Sorted(maps.Keys(f.state.NodeKeys)) {
		out = append(out, f.state.NodeKeys[node].clone())
	}
	return out
}
