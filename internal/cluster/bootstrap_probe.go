package cluster

import (
	"context"
	"sync"
	"time"
)

// passingServers runs RaftProbe on the Raft address of every server but this
// node, in parallel, and returns the servers that pass, in the given order, and
// the names of those that fail. failures is bootstrap-expect's record of failed
// servers. A server in it is probed again only after its retry wait, and fails
// until then. A failure is logged once per server and raftProbeWarnInterval, as
// the leader does. With RaftProbe unset every server passes. When ctx ends
// during the probes, the results are incomplete and the caller must not use them.
func (m *Manager) passingServers(ctx context.Context, servers []memberEntry,
	failures map[string]probeFailure) (passing []memberEntry, failed []string) {
	if m.cfg.RaftProbe == nil {
		return servers, nil
	}
	start := time.Now()
	errs := make([]error, len(servers))
	probed := make([]bool, len(servers))
	var wg sync.WaitGroup
	for i, server := range servers {
		previous, failing := failures[server.name]
		switch {
		case server.name == m.cfg.NodeName:
			// This node counts without a probe of its own Raft address.
		case failing && previous.waits(server.meta.RaftAddr, start):
			errs[i] = previous.err
		default:
			probed[i] = true
			wg.Go(func() { errs[i] = m.probe(ctx, server.meta.RaftAddr) })
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, nil
	}
	now := time.Now()

	present := map[string]bool{}
	for i, server := range servers {
		present[server.name] = true
		if errs[i] == nil {
			m.recordBootstrapPass(server, failures, now)
			passing = append(passing, server)
			continue
		}
		failed = append(failed, server.name)
		if probed[i] {
			m.recordBootstrapFailure(server, errs[i], failures, now)
		}
	}
	// A server that is no longer alive starts with a new record if it returns.
	for name := range failures {
		if !present[name] {
			delete(failures, name)
		}
	}
	return passing, failed
}

func (m *Manager) recordBootstrapPass(server memberEntry, failures map[string]probeFailure,
	now time.Time) {
	previous, failing := failures[server.name]
	if !failing {
		return
	}
	delete(failures, server.name)
	m.log.Info("server passed the Raft connection check; it counts toward "+
		"bootstrap_expect", "member", server.name, "raft_address", server.meta.RaftAddr,
		"failed_for", now.Sub(previous.since).Round(time.Millisecond),
		"failed_probes", previous.failures)
}

func (m *Manager) recordBootstrapFailure(server memberEntry, err error,
	failures map[string]probeFailure, now time.Time) {
	previous, failing := failures[server.name]
	failure, warn := m.nextProbeFailure(previous, failing, server.meta.RaftAddr, err, now)
	failures[server.name] = failure
	if warn {
		m.log.Warn("server failed the Raft connection check, so it does not count "+
			"toward bootstrap_expect; check that its node certificate comes from this "+
			"cluster's CA and that its Raft address is reachable", "member", server.name,
			"raft_address", server.meta.RaftAddr, "gossip_address", server.gossipAddr,
			"error", err, "failed_probes", failure.failures,
			"retry_in", failure.retryAt.Sub(now))
	}
}
