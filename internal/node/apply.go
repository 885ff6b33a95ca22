package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bundlex/bundlex/raft"
)

// leaderWait bounds how long a write waits for a leader to be known before it
// fails, so that a cluster without quorum responds within a bounded time.
const leaderWait = 5 * time.Second

// ErrNoLeader is returned by writes while the cluster has no leader.
var ErrNoLeader = errors.New("no cluster leader")

// apply writes cmd through Raft: directly on the leader, forwarded to the
// leader on a follower.
func (n *Node) apply(ctx context.Context, cmd raft.Command) error {
	if n.store.IsLeader() {
		return n.store.Apply(ctx, cmd)
	}
	addr, err := n.waitForLeaderAddr(ctx)
	if err != nil {
		return err
	}
	if n.forwarder == nil {
		return fmt.Errorf("node: %w: this node cannot forward writes", raft.ErrNotLeader)
	}
	return n.forwarder.Apply(ctx, addr, cmd)
}

// waitForLeaderAddr returns the leader's Raft address, waiting up to leaderWait
// for an election to finish.
func (n *Node) waitForLeaderAddr(ctx context.Context) (string, error) {
	if _, addr := n.store.Leader(); addr != "" {
		return string(addr), nil
	}
	waitCtx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	if err := n.store.WaitForLeader(waitCtx); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("node: wait for a cluster leader: %w", ctx.Err())
		}
		return "", fmt.Errorf("node: %w after waiting %s: the cluster may have lost quorum; "+
			"check `bundlex cluster raft` on each node: %w", ErrNoLeader, leaderWait, raft.ErrNotLeader)
	}
	_, addr := n.store.Leader()
	if addr == "" {
		return "", fmt.Errorf("node: %w: %w", ErrNoLeader, raft.ErrNotLeader)
	}
	return string(addr), nil
}
