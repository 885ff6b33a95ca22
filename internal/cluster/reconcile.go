package cluster

import (
	"context"
	"time"

	hraft "github.com/hashicorp/raft"
)

// runLeadership runs the reconcile loop while this node is the Raft leader.
func (m *Manager) runLeadership() {
	leadership, cancel := m.store.SubscribeLeadership()
	defer cancel()
	var stopReconcile func()
	defer func() {
		if stopReconcile != nil {
			stopReconcile()
		}
	}()
	for {
		select {
		case <-m.stop:
			return
		case leader, open := <-leadership:
			if !open {
				return
			}
			switch {
			case leader && stopReconcile == nil:
				stopReconcile = m.startReconcile()
			case !leader && stopReconcile != nil:
				m.log.Info("lost Raft leadership; stopping the reconcile loop")
				stopReconcile()
				stopReconcile = nil
			}
		}
	}
}

// startReconcile starts a reconciler and returns the function that stops it and
// waits for it to end.
func (m *Manager) startReconcile() func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r := &reconciler{
		m:            m,
		healthy:      map[string]healthRecord{},
		missingSince: map[string]time.Time{},
		rejected:     map[string]bool{},
	}
	go func() {
		defer close(done)
		r.run(ctx)
	}()
	return func() {
		cancel()
		<-done
		m.clearProbeFailures()
	}
}

// reconciler is the leader's state for one leadership term. A new leader starts
// with empty maps, so it observes stability and absences anew.
type reconciler struct {
	m *Manager
	// healthy records since when each non-voter has been alive and caught up.
	healthy map[string]healthRecord
	// missingSince records since when each server of the configuration has been
	// unknown to gossip.
	missingSince map[string]time.Time
	// rejected records the servers whose removal was rejected, to log it once.
	rejected map[string]bool
	// failedVoters is the number of voters dead in gossip or missing from it,
	// counted at the start of each round.
	failedVoters int
}

type healthRecord struct {
	since    time.Time
	raftAddr string
}

func (r *reconciler) run(ctx context.Context) {
	m := r.m
	m.log.Info("became Raft leader; starting the reconcile loop")
	// The barrier waits until entries of earlier terms are applied, so that the
	// configuration read next includes every committed change.
	for {
		err := m.store.Raft().Barrier(m.cfg.MembershipChangeTimeout).Error()
		if err == nil {
			break
		}
		m.log.Warn("Raft barrier failed; retrying before reconciling", "error", err)
		if !r.sleep(ctx) {
			return
		}
	}
	for {
		r.reconcile(ctx)
		if !r.sleep(ctx) {
			return
		}
	}
}

// sleep waits for the next reconcile round and returns false when the loop must
// end.
func (r *reconciler) sleep(ctx context.Context) bool {
	timer := time.NewTimer(r.m.cfg.ReconcileInterval)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-r.m.stop:
		return false
	case <-timer.C:
	case <-r.m.reconcileKick:
	}
	return true
}

// reconcile makes at most one membership change, then kicks itself, so that each
// change is decided on the configuration that the previous one produced.
func (r *reconciler) reconcile(ctx context.Context) {
	m := r.m
	defer m.reconcilePasses.Add(1)
	if m.leaving.Load() {
		m.stepDownForLeave(ctx)
		return
	}
	servers, err := m.raftServers()
	if err != nil {
		m.log.Warn("cannot read the Raft configuration; retrying", "error", err)
		return
	}
	members := m.memberSnapshot()
	m.forgetProbes(members, servers)
	r.failedVoters = countFailedVoters(servers, members, m.cfg.NodeName)
	now := time.Now()
	known := map[string]bool{}
	for _, member := range members {
		known[member.name] = true
		server, inConfig := servers[member.name]
		if r.reconcileMember(ctx, member, server, inConfig, servers, now) {
			m.kick()
			return
		}
	}

	for id, server := range servers {
		if known[id] || id == m.cfg.NodeName {
			delete(r.missingSince, id)
			continue
		}
		since, ok := r.missingSince[id]
		if !ok {
			r.missingSince[id] = now
			continue
		}
		if r.removeFailed(ctx, id, server, servers, since, now, "missing from gossip") {
			delete(r.missingSince, id)
			m.kick()
			return
		}
	}
}

// countFailedVoters counts the voters other than self that are dead in gossip or
// missing from it.
func countFailedVoters(servers map[string]hraft.Server, members []memberEntry,
	self string) int {
	status := map[string]Status{}
	for _, member := range members {
		status[member.name] = member.status
	}
	failed := 0
	for id, server := range servers {
		if server.Suffrage != hraft.Voter || id == self {
			continue
		}
		if current, known := status[id]; !known || current == StatusDead {
			failed++
		}
	}
	return failed
}

// reconcileMember brings one member's Raft membership in line with its gossip
// status and reports whether it changed the configuration.
func (r *reconciler) reconcileMember(ctx context.Context, member memberEntry,
	server hraft.Server, inConfig bool, servers map[string]hraft.Server,
	now time.Time) bool {
	self := member.name == r.m.cfg.NodeName
	switch member.status {
	case StatusAlive:
		if member.metaErr != nil {
			return false
		}
		switch {
		case !inConfig && self:
			// A leader missing from its own configuration removed itself and is
			// stepping down.
			return false
		case !inConfig:
			// Only the add is gated: a member in the configuration that fails a
			// check stays, so that a network fault cannot remove voters.
			if !r.passesProbe(ctx, member, now) {
				return false
			}
			return r.addNonvoter(ctx, member)
		case string(server.Address) != member.meta.RaftAddr:
			delete(r.healthy, member.name)
			return r.updateAddress(ctx, member, server)
		case server.Suffrage != hraft.Voter && !self:
			return r.promoteWhenStable(ctx, member, now)
		}
	case StatusLeaving, StatusLeft:
		if inConfig && !self {
			return r.remove(ctx, member.name, server, "the server left gracefully")
		}
	case StatusDead:
		if inConfig && !self {
			return r.removeFailed(ctx, member.name, server, servers, member.since, now,
				"dead in gossip")
		}
	}
	return false
}

// removeFailed removes a server that has been dead or missing since a time,
// once DeadServerGrace has passed. It keeps a voter when the removal would leave
// fewer than MinQuorum voters. It also keeps one when half or more of the voters
// look failed in gossip: a leader stays leader only while a majority responds in
// Raft, so then some of them are alive and this leader's gossip is cut off.
func (r *reconciler) removeFailed(ctx context.Context, name string, server hraft.Server,
	servers map[string]hraft.Server, since, now time.Time, why string) bool {
	m := r.m
	if m.cfg.DisableDeadServerCleanup || now.Sub(since) < m.cfg.DeadServerGrace {
		return false
	}
	if server.Suffrage == hraft.Voter {
		voters := countVoters(servers)
		rejection := ""
		switch {
		case voters-1 < m.cfg.MinQuorum:
			rejection = "rejected the removal of a failed server because fewer voters " +
				"than min_quorum would remain; remove it by hand once it is gone for good"
		case r.failedVoters*2 >= voters:
			rejection = "rejected the removal of a failed server because half or more " +
				"of the voters look failed; check gossip connectivity of this leader"
		}
		if rejection != "" {
			if !r.rejected[name] {
				m.log.Warn(rejection, "member", name, "raft_address", server.Address,
					"reason", why, "failed_for_seconds", now.Sub(since).Seconds(),
					"voters", voters, "failed_voters", r.failedVoters,
					"min_quorum", m.cfg.MinQuorum)
				r.rejected[name] = true
			}
			return false
		}
	}
	delete(r.rejected, name)
	return r.remove(ctx, name, server, why+" for longer than dead_server_grace",
		"failed_for_seconds", now.Sub(since).Seconds())
}
