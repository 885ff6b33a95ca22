package cluster

import (
	"context"
	"time"

	hraft "github.com/hashicorp/raft"
)

const (
	// raftProbeRetryMax caps the wait before the leader, or a server waiting
	// for bootstrap_expect, probes a failing member again. The wait starts at
	// ReconcileInterval and doubles with each failure, so that a member that
	// never passes costs at most one probe timeout of the loop per
	// raftProbeRetryMax.
	raftProbeRetryMax = 30 * time.Second
	// raftProbeWarnInterval is how often the leader, or a server waiting for
	// bootstrap_expect, repeats the warning for a member that keeps failing the
	// probe. A new Raft address or a pass after a failure is logged at once.
	raftProbeWarnInterval = 10 * time.Minute
)

// probeFailure is the record of a member whose Raft address failed the probe.
// The leader keeps it until the member passes, joins the configuration or leaves
// gossip, and bootstrap-expect until the member passes or leaves gossip.
type probeFailure struct {
	raftAddr string
	err      error
	// since is the first failure of this run of failures.
	since    time.Time
	failures int
	// retryAt is when the member may be probed again.
	retryAt  time.Time
	warnedAt time.Time
}

// passesProbe reports whether the member may be added to the Raft
// configuration: RaftProbe is unset, or it passes now. A member that failed is
// probed again only after its retry wait, and reported as failing until then.
func (r *reconciler) passesProbe(ctx context.Context, member memberEntry, now time.Time) bool {
	m := r.m
	if m.cfg.RaftProbe == nil {
		return true
	}
	address := member.meta.RaftAddr
	previous, failing := m.probeFailure(member.name)
	if failing && previous.waits(address, now) {
		return false
	}

	err := m.probe(ctx, address)
	if err == nil {
		if failing {
			m.setProbeFailure(member.name, nil)
			m.log.Info("member passed the Raft connection check; adding it to the Raft "+
				"configuration", "member", member.name, "raft_address", address,
				"failed_for", now.Sub(previous.since).Round(time.Millisecond),
				"failed_probes", previous.failures)
		}
		return true
	}
	if ctx.Err() != nil {
		// Leadership ended during the probe, so its error is no fact about the
		// member.
		return false
	}

	failure, warn := m.nextProbeFailure(previous, failing, address, err, now)
	m.setProbeFailure(member.name, &failure)
	if warn {
		m.log.Warn("member failed the Raft connection check, so it is not added to the "+
			"Raft configuration; check that its node certificate comes from this "+
			"cluster's CA and that its Raft address is reachable", "member", member.name,
			"raft_address", address, "gossip_address", member.gossipAddr, "error", err,
			"failed_probes", failure.failures, "retry_in", failure.retryAt.Sub(now))
	}
	return false
}

// probe runs RaftProbe on address, bounded by RaftProbeTimeout.
func (m *Manager) probe(ctx context.Context, address string) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RaftProbeTimeout)
	defer cancel()
	return m.cfg.RaftProbe(ctx, address)
}

// waits reports whether a member with this failure record must not be probed
// at address yet: it failed there and its retry wait has not passed.
func (f probeFailure) waits(address string, now time.Time) bool {
	return f.raftAddr == address && now.Before(f.retryAt)
}

// nextProbeFailure returns the record after a probe of address failed with err
// at now, given the previous record if failing, and whether to log a warning.
// Failures at one address lengthen the retry wait and keep the warning time, so
// that a member that keeps failing is warned about once per
// raftProbeWarnInterval. A new address starts a new record.
func (m *Manager) nextProbeFailure(previous probeFailure, failing bool, address string,
	err error, now time.Time) (probeFailure, bool) {
	sameAddress := failing && previous.raftAddr == address
	failure := probeFailure{raftAddr: address, err: err, since: now, failures: 1,
		warnedAt: now}
	if sameAddress {
		failure.since = previous.since
		failure.failures = previous.failures + 1
		failure.warnedAt = previous.warnedAt
	}
	wait := min(m.cfg.ReconcileInterval<<min(failure.failures-1, 16), raftProbeRetryMax)
	failure.retryAt = now.Add(wait)
	warn := !sameAddress || now.Sub(previous.warnedAt) >= raftProbeWarnInterval
	if warn {
		failure.warnedAt = now
	}
	return failure, warn
}

// forgetProbes drops the records of members that no longer wait for an add:
// they joined the configuration, or are no longer alive in gossip.
func (m *Manager) forgetProbes(members []memberEntry, servers map[string]hraft.Server) {
	waiting := map[string]bool{}
	for _, member := range members {
		if _, inConfig := servers[member.name]; member.usable() && !inConfig {
			waiting[member.name] = true
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.probeFailures {
		if !waiting[name] {
			delete(m.probeFailures, name)
		}
	}
}

func (m *Manager) probeFailure(name string) (probeFailure, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	failure, ok := m.probeFailures[name]
	return failure, ok
}

// setProbeFailure records failure for name, or drops the record when failure is
// nil.
func (m *Manager) setProbeFailure(name string, failure *probeFailure) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if failure == nil {
		delete(m.probeFailures, name)
		return
	}
	m.probeFailures[name] = *failure
}

// clearProbeFailures drops every record, when this node stops leading: only the
// leader updates these records, so they would go stale.
func (m *Manager) clearProbeFailures() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.probeFailures)
}
