package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"

	hraft "github.com/hashicorp/raft"

	"github.com/bundlex/bundlex/raft"
)

// runBootstrapExpect waits until BootstrapExpect servers without Raft state see
// each other through gossip and pass RaftProbe, then the one with the lowest name
// among them bootstraps them all as voters. It ends once this node has Raft
// state or learns of a server that has some, because a cluster then exists and
// its leader adds this node.
func (m *Manager) runBootstrapExpect() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-m.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	failures := map[string]probeFailure{}
	var waiting string
	for {
		done, reason := m.tryBootstrap(ctx, failures)
		if done {
			return
		}
		// Log each distinct reason for waiting once, not every interval.
		if reason != waiting {
			m.log.Info("bootstrap_expect is waiting", "reason", reason,
				"bootstrap_expect", m.cfg.BootstrapExpect)
			waiting = reason
		}
		if !m.sleep(m.cfg.ReconcileInterval, m.bootstrapKick) {
			return
		}
	}
}

// tryBootstrap takes one bootstrap decision. It returns done when bootstrap-expect
// has nothing left to do, and otherwise why it waits. failures carries the
// servers that failed RaftProbe from one decision to the next.
func (m *Manager) tryBootstrap(ctx context.Context,
	failures map[string]probeFailure) (done bool, waiting string) {
	if m.leaving.Load() {
		return true, ""
	}
	if m.store.HasExistingState() {
		m.log.Info("this node has Raft state, so it does not bootstrap a cluster")
		return true, ""
	}
	var alive []memberEntry
	for _, entry := range m.memberSnapshot() {
		if entry.usable() {
			alive = append(alive, entry)
		}
	}
	// A server that fails the probe, for example one with the gossip key but a
	// node certificate of another CA, is left out before anything else. So it
	// cannot become a voter, and with the lowest name it is not the server the
	// others wait for. Its metadata is ignored too, so that its claim of Raft
	// state or of another bootstrap_expect neither ends nor stalls the bootstrap.
	servers, failed := m.passingServers(ctx, alive, failures)
	if ctx.Err() != nil {
		return true, ""
	}
	for _, entry := range servers {
		if entry.meta.RaftState == 1 {
			m.log.Info("a server with Raft state is alive, so this node joins its "+
				"cluster instead of bootstrapping; its leader adds this node",
				"member", entry.name, "raft_address", entry.meta.RaftAddr)
			return true, ""
		}
		if entry.meta.Expect != m.cfg.BootstrapExpect {
			return false, fmt.Sprintf("server %s expects %d servers and this node %d; "+
				"set the same bootstrap_expect on every initial server", entry.name,
				entry.meta.Expect, m.cfg.BootstrapExpect)
		}
	}
	if len(servers) < m.cfg.BootstrapExpect {
		reason := fmt.Sprintf("%d of %d servers are alive in gossip and pass the Raft "+
			"connection check", len(servers), m.cfg.BootstrapExpect)
		if len(failed) > 0 {
			reason += fmt.Sprintf("; failing the check: %s", strings.Join(failed, ", "))
		}
		return false, reason
	}
	// memberSnapshot sorts by name, so the first server has the lowest name. Only
	// that one bootstraps, so at most one cluster forms from one gossip view and
	// one set of probe results.
	//
	// NOTE: two servers whose views differ can each find themselves lowest, for
	// example when a probe between two initial servers fails for a moment. With
	// no more than bootstrap_expect servers that pass each other's probes alive,
	// only one of them counts enough servers, but with more, two clusters can form.
	if servers[0].name != m.cfg.NodeName {
		return false, fmt.Sprintf("server %s has the lowest name and bootstraps the "+
			"cluster", servers[0].name)
	}
	return m.bootstrap(servers)
}

// bootstrap makes members, which passed RaftProbe in this decision, the voters
// of a new Raft configuration.
func (m *Manager) bootstrap(members []memberEntry) (done bool, waiting string) {
	if len(members) > m.cfg.BootstrapExpect {
		m.log.Warn("more servers than bootstrap_expect are alive; bootstrapping with all "+
			"of them", "servers", len(members), "bootstrap_expect", m.cfg.BootstrapExpect)
	}
	servers := make([]hraft.Server, 0, len(members))
	for _, member := range members {
		servers = append(servers, hraft.Server{
			Suffrage: hraft.Voter,
			ID:       hraft.ServerID(member.name),
			Address:  hraft.ServerAddress(member.meta.RaftAddr),
		})
	}
	err := m.store.BootstrapCluster(servers)
	if errors.Is(err, raft.ErrExistingState) {
		m.log.Info("this node received Raft state before bootstrapping, so it does not "+
			"bootstrap", "error", err)
		return true, ""
	}
	if err != nil {
		m.log.Error("bootstrap failed; retrying", "error", err)
		return false, "the last bootstrap attempt failed"
	}
	m.log.Info("bootstrapped the cluster", "servers", fmt.Sprint(servers))
	m.publishMeta()
	return true, ""
}
