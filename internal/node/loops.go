package node

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/bundlex/bundlex/bundle"
)

// retryDelay is the pause before a failed background step runs again.
const retryDelay = 2 * time.Second

// watchStore keeps the bundle endpoint and the metrics in step with the store:
// the handler encodes each local bundle version once, when it is applied. The
// handler gets no bundle before the state is current, so that the versions the
// log replay passes through after a restart are never served.
func (n *Node) watchStore(ctx context.Context) {
	changes, cancel := n.store.Subscribe()
	defer cancel()
	var served uint64
	var known map[string]bool
	for {
		// Check before the read, so that a state read during the replay is never
		// served.
		current := n.store.IsCurrent()
		rec, ok := n.store.LocalBundle()
		if current && ok && rec.Sequence != served {
			n.handler.SetBundle(rec.Document)
			served = rec.Sequence
			n.log.Info("serving local bundle", "trust_domain", n.td.Name(), "sequence", served)
		}
		known = n.updateStoreMetrics(known)
		select {
		case <-ctx.Done():
			return
		case <-changes:
		}
	}
}

// runLeadership starts the leader's duties when this node becomes leader and
// stops them when it loses leadership: syncing static relationships, publishing
// the local bundle and polling peers (SPIFFE Federation: only one writer fetches).
func (n *Node) runLeadership(ctx context.Context) {
	ticker := time.NewTicker(leadershipPoll)
	defer ticker.Stop()
	leadership, cancel := n.store.SubscribeLeadership()
	defer cancel()
	var stopLeading context.CancelFunc
	defer func() {
		if stopLeading != nil {
			stopLeading()
		}
	}()
	for {
		leader := n.store.IsLeader()
		switch {
		case leader && stopLeading == nil:
			stopLeading = n.startLeading(ctx)
		case !leader && stopLeading != nil:
			n.log.Info("lost Raft leadership; stopping leader duties")
			stopLeading()
			stopLeading = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-leadership:
		case <-ticker.C:
		}
	}
}

// startLeading starts the leader's duties and returns the function that stops them.
func (n *Node) startLeading(ctx context.Context) context.CancelFunc {
	leaderCtx, cancel := context.WithCancel(ctx)
	n.log.Info("became Raft leader; starting leader duties")
	n.goRun(func() { n.lead(leaderCtx) })
	return cancel
}

// lead runs the leader's duties until ctx ends: static relationships, the local
// bundle and peer polling. A static relationship that fails its checks is
// retried in the background and delays none of the others.
func (n *Node) lead(ctx context.Context) {
	var rejected []string
	for ctx.Err() == nil {
		// hashicorp/raft applies the entries of earlier terms to the FSM only once
		// the new leader commits an entry of its own term. Before that, the reads
		// below miss stored relationships, so a static relationship removed from
		// the file would never be deleted.
		err := n.store.Raft().Barrier(n.cfg.Raft.ApplyTimeout).Error()
		if err == nil {
			rejected, err = n.syncStaticRelationships(ctx)
		}
		if err == nil {
			err = n.publishCurrent(ctx)
		}
		if err == nil {
			break
		}
		n.log.Error("leader setup failed; retrying", "error", err, "retry_in", retryDelay)
		if !sleep(ctx, retryDelay) {
			return
		}
	}
	if len(rejected) > 0 {
		n.goRun(func() { n.retryStaticRelationships(ctx, rejected) })
	}
	n.goRun(func() { n.poller.Run(ctx) })
	if n.builtin != nil {
		n.keepLocalComposed(ctx)
	}
}

// keepLocalComposed republishes the local bundle whenever a node's keys change or
// a departed node's keys reach their retirement time.
func (n *Node) keepLocalComposed(ctx context.Context) {
	changes, cancel := n.store.Subscribe()
	defer cancel()
	for {
		if err := n.composeLocal(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("publish local bundle failed", "error", err)
		}
		wait := time.Hour
		if next := n.nextRetirement(); !next.IsZero() {
			wait = min(wait, max(time.Until(next), 0)+time.Second)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-changes:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// publishCurrent publishes the authority's current keys: for the built-in
// authority this node's keys, then the union of all nodes' keys.
func (n *Node) publishCurrent(ctx context.Context) error {
	if n.builtin != nil {
		if err := n.publishOwnKeys(ctx); err != nil {
			return err
		}
		return n.composeLocal(ctx)
	}
	data, err := n.file.Read()
	if err != nil {
		return err
	}
	keys, err := n.fileKeys(data)
	if err != nil {
		return err
	}
	return n.publishLocal(ctx, keys)
}

// runAuthority advances the built-in authority's rotation schedule, or follows
// the file authority's file, and publishes every change while leader.
func (n *Node) runAuthority(ctx context.Context) {
	if n.file != nil {
		n.followFile(ctx)
		return
	}
	for {
		changed, err := n.builtin.Tick()
		if err != nil {
			n.log.Error("authority rotation step failed", "error", err, "retry_in", retryDelay)
		}
		if changed || !n.ownKeysPublished() {
			if pubErr := n.publishOwnKeys(ctx); pubErr != nil && ctx.Err() == nil {
				n.log.Error("publish node keys failed", "error", pubErr, "retry_in", retryDelay)
				err = errRetry
			}
		}
		wait := min(time.Until(n.builtin.NextEvent()), time.Hour)
		if err != nil {
			wait = retryDelay
		}
		timer := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case reply := <-n.rotateCh:
			timer.Stop()
			reply <- n.rotate(ctx)
		case <-timer.C:
		}
	}
}

// errRetry makes the authority loop try again after retryDelay.
var errRetry = errors.New("node: retry")

// ownKeysPublished reports whether the store holds this node's current keys.
func (n *Node) ownKeysPublished() bool {
	doc, err := bundle.Marshal(n.builtinKeys())
	if err != nil {
		return false
	}
	for _, stored := range n.store.NodeKeys() {
		if stored.Node == n.cfg.NodeName {
			return bytes.Equal(stored.Document, doc)
		}
	}
	return false
}

// rotate prepares new keys now, publishes them and waits until the local bundle
// carries them.
func (n *Node) rotate(ctx context.Context) error {
	if err := n.builtin.Rotate(); err != nil {
		return err
	}
	n.log.Info("authority rotation forced by operator")
	if err := n.publishOwnKeys(ctx); err != nil {
		return err
	}
	return n.waitForOwnKeys(ctx)
}

// followFile publishes the file authority's bundle each time the file changes.
// A file that cannot be parsed keeps the published bundle.
func (n *Node) followFile(ctx context.Context) {
	for data := range n.file.Changed(ctx) {
		if !n.store.IsLeader() {
			continue
		}
		keys, err := n.fileKeys(data)
		if err != nil {
			n.log.Error("authority bundle file rejected", "error", err)
			continue
		}
		if err := n.publishLocal(ctx, keys); err != nil {
			n.log.Error("publish local bundle failed", "error", err)
		}
	}
}

// sleep waits for d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
