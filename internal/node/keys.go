package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/raft"
)

// publishOwnKeys writes this node's public keys into the replicated node key set
// when they changed. The leader then publishes the union of every node's keys as
// the local bundle (see composeLocal).
func (n *Node) publishOwnKeys(ctx context.Context) error {
	own := n.builtinKeys()
	doc, err := bundle.Marshal(own)
	if err != nil {
		return err
	}
	for _, stored := range n.store.NodeKeys() {
		if stored.Node == n.cfg.NodeName && bytes.Equal(stored.Document, doc) {
			return nil
		}
	}
	var retireAt time.Time
	for _, ca := range own.X509Authorities {
		if ca.NotAfter.After(retireAt) {
			retireAt = ca.NotAfter
		}
	}
	keys := raft.NodeKeys{Node: n.cfg.NodeName, Document: doc, RetireAt: retireAt.UTC(),
		UpdatedAt: n.now().UTC()}
	if err := n.apply(ctx, raft.PutNodeKeys{Keys: keys}); err != nil {
		return fmt.Errorf("node: publish the keys of node %s: %w", n.cfg.NodeName, err)
	}
	x509Keys, jwtKeys := own.KeyCount()
	n.log.Info("published node keys", "x509_keys", x509Keys, "jwt_keys", jwtKeys,
		"retire_at", retireAt)
	return nil
}

// composeLocal publishes the union of all nodes' keys as the local bundle and
// drops the key sets whose retirement time has passed. A node that left keeps its
// keys published until no SVID signed by them can still be valid (SPIFFE
// Federation 4.1). It runs on the leader only.
func (n *Node) composeLocal(ctx context.Context) error {
	union := bundle.New(n.td)
	now := n.now()
	for _, keys := range n.store.NodeKeys() {
		if keys.Node != n.cfg.NodeName && now.After(keys.RetireAt) {
			n.log.Info("retiring the keys of a node that stopped updating them",
				"key_node", keys.Node, "retire_at", keys.RetireAt)
			err := n.store.Apply(ctx, raft.DeleteNodeKeys{Node: keys.Node})
			if err != nil && !errors.Is(err, raft.ErrNotFound) {
				return err
			}
			continue
		}
		b, _, err := bundle.Parse(n.td, keys.Document)
		if err != nil {
			n.log.Error("stored node keys cannot be parsed; leaving them out",
				"key_node", keys.Node, "error", err)
			continue
		}
		union.X509Authorities = append(union.X509Authorities, b.X509Authorities...)
		union.JWTAuthorities = append(union.JWTAuthorities, b.JWTAuthorities...)
	}
	if len(union.X509Authorities) == 0 && len(union.JWTAuthorities) == 0 {
		return errors.New("node: no node has published keys yet")
	}
	union.Normalize()
	dedupJWT(union)
	return n.publishLocal(ctx, union)
}

// nextRetirement returns the earliest retirement time of another node's keys, or
// the zero time when there is none.
func (n *Node) nextRetirement() time.Time {
	var next time.Time
	for _, keys := range n.store.NodeKeys() {
		if keys.Node == n.cfg.NodeName {
			continue
		}
		if next.IsZero() || keys.RetireAt.Before(next) {
			next = keys.RetireAt
		}
	}
	return next
}

// waitForOwnKeys waits until the local bundle contains this node's current keys,
// so that an operator's rotate returns the bundle that peers will fetch.
func (n *Node) waitForOwnKeys(ctx context.Context) error {
	own := n.builtinKeys()
	changes, cancel := n.store.Subscribe()
	defer cancel()
	for {
		if rec, ok := n.store.LocalBundle(); ok {
			if local, err := parseRecord(rec); err == nil && containsKeys(local, own) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node: the leader has not published this node's new keys "+
				"yet: %w", ctx.Err())
		case <-changes:
		}
	}
}

// containsKeys reports whether every key of part is in whole.
func containsKeys(whole, part *bundle.Bundle) bool {
	merged := whole.Clone()
	merged.X509Authorities = append(merged.X509Authorities, part.X509Authorities...)
	merged.JWTAuthorities = append(merged.JWTAuthorities, part.JWTAuthorities...)
	merged.Normalize()
	dedupJWT(merged)
	return bundle.SameKeys(merged, whole)
}

// dedupJWT drops repeated key IDs after a merge; Normalize sorts them first.
func dedupJWT(b *bundle.Bundle) {
	out := b.JWTAuthorities[:0]
	for i, key := range b.JWTAuthorities {
		if i > 0 && key.KeyID == b.JWTAuthorities[i-1].KeyID {
			continue
		}
		out = append(out, key)
	}
	b.JWTAuthorities = out
}
