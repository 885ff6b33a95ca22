package cluster

import (
	"context"
	"time"

	hraft "github.com/hashicorp/raft"
)

// addNonvoter adds an alive member that is not in the configuration. It becomes a
// voter only once promoteWhenStable finds it stable, so a new server that is
// still installing a snapshot never counts toward the quorum.
func (r *reconciler) addNonvoter(ctx context.Context, member memberEntry) bool {
	future := r.m.store.Raft().AddNonvoter(hraft.ServerID(member.name),
		hraft.ServerAddress(member.meta.RaftAddr), 0, r.m.cfg.MembershipChangeTimeout)
	if err := waitFuture(ctx, future); err != nil {
		r.m.log.Error("cannot add server as non-voter; retrying", "member", member.name,
			"raft_address", member.meta.RaftAddr, "error", err)
		return false
	}
	r.m.log.Info("added server as non-voter", "member", member.name,
		"raft_address", member.meta.RaftAddr, "gossip_address", member.gossipAddr)
	return true
}

// updateAddress replaces a server's address in the configuration with the one it
// advertises. hashicorp/raft's AddVoter and AddNonvoter with an existing ID keep
// the server's suffrage and change only its address.
func (r *reconciler) updateAddress(ctx context.Context, member memberEntry,
	server hraft.Server) bool {
	raftAPI := r.m.store.Raft()
	address := hraft.ServerAddress(member.meta.RaftAddr)
	timeout := r.m.cfg.MembershipChangeTimeout
	var future hraft.IndexFuture
	if server.Suffrage == hraft.Voter {
		future = raftAPI.AddVoter(server.ID, address, 0, timeout)
	} else {
		future = raftAPI.AddNonvoter(server.ID, address, 0, timeout)
	}
	if err := waitFuture(ctx, future); err != nil {
		r.m.log.Error("cannot update server's Raft address; retrying", "member",
			member.name, "old_raft_address", server.Address, "raft_address", address,
			"error", err)
		return false
	}
	r.m.log.Info("updated server's Raft address", "member", member.name,
		"old_raft_address", server.Address, "raft_address", address,
		"suffrage", suffrageName(server.Suffrage))
	return true
}

// promoteWhenStable promotes a non-voter to voter once it has been alive, at one
// address and within MaxTrailingLogs of the leader's last index for
// ServerStabilizationTime.
func (r *reconciler) promoteWhenStable(ctx context.Context, member memberEntry,
	now time.Time) bool {
	m := r.m
	leaderIndex := m.store.Raft().LastIndex()
	if member.meta.LastIndex+m.cfg.MaxTrailingLogs < leaderIndex {
		delete(r.healthy, member.name)
		return false
	}
	record, ok := r.healthy[member.name]
	if !ok || record.raftAddr != member.meta.RaftAddr {
		r.healthy[member.name] = healthRecord{since: now, raftAddr: member.meta.RaftAddr}
		return false
	}
	if now.Sub(record.since) < m.cfg.ServerStabilizationTime {
		return false
	}
	future := m.store.Raft().AddVoter(hraft.ServerID(member.name),
		hraft.ServerAddress(member.meta.RaftAddr), 0, m.cfg.MembershipChangeTimeout)
	if err := waitFuture(ctx, future); err != nil {
		m.log.Error("cannot promote server to voter; retrying", "member", member.name,
			"raft_address", member.meta.RaftAddr, "error", err)
		return false
	}
	delete(r.healthy, member.name)
	m.log.Info("promoted server to voter", "member", member.name,
		"raft_address", member.meta.RaftAddr, "last_index", member.meta.LastIndex,
		"leader_last_index", leaderIndex, "stable_for", now.Sub(record.since).Round(
			time.Millisecond))
	return true
}

// remove removes a server from the configuration for the reason given. The
// removal log record gets the extra key/value pairs.
func (r *reconciler) remove(ctx context.Context, name string, server hraft.Server,
	reason string, extra ...any) bool {
	future := r.m.store.Raft().RemoveServer(server.ID, 0, r.m.cfg.MembershipChangeTimeout)
	if err := waitFuture(ctx, future); err != nil {
		r.m.log.Error("cannot remove server; retrying", "member", name,
			"raft_address", server.Address, "reason", reason, "error", err)
		return false
	}
	delete(r.healthy, name)
	attrs := append([]any{"member", name, "raft_address", server.Address,
		"suffrage", suffrageName(server.Suffrage), "reason", reason}, extra...)
	r.m.log.Info("removed server from the Raft configuration", attrs...)
	return true
}

// waitFuture waits for a Raft membership change until it is committed, fails or
// ctx ends.
func waitFuture(ctx context.Context, future hraft.Future) error {
	done := make(chan error, 1)
	go func() { done <- future.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
