package cluster

import (
	"errors"
	"fmt"

	hraft "github.com/hashicorp/raft"

	"github.com/bundlex/bundlex/raft"
)

// runBootstrapExpect waits until BootstrapExpect servers without Raft state see
// each other through gossip, then the one with the lowest name bootstraps them
// all as voters. It ends once this node has Raft state or learns of a server that
// has some, because a cluster then exists and its leader adds this node.
func (m *Manager) runBootstrapExpect() {
	var waiting string
	for {
		done, reason := m.tryBootstrap()
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
// has nothing left to do, and otherwise why it waits.
func (m *Manager) tryBootstrap() (done bool, waiting string) {
	if m.leaving.Load() {
		return true, ""
	}
	if m.store.HasExistingState() {
		m.log.Info("this node has Raft state, so it does not bootstrap a cluster")
		return true, ""
	}
	var servers []memberEntry
	for _, entry := range m.memberSnapshot() {
		if !entry.usable() {
			continue
		}
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
		servers = append(servers, entry)
	}
	if len(servers) < m.cfg.BootstrapExpect {
		return false, fmt.Sprintf("%d of %d servers are alive in gossip", len(servers),
			m.cfg.BootstrapExpect)
	}
	// memberSnapshot sorts by name, so the first server has the lowest name. Only
	// that one bootstraps, so at most one cluster forms from one gossip view.
	if servers[0].name != m.cfg.NodeName {
		return false, fmt.Sprintf("server %s has the lowest name and bootstraps the "+
			"cluster", servers[0].name)
	}
	return m.bootstrap(servers)
}

// NOTE: unlike the leader's adds, bootstrap does not run Config.RaftProbe, so a
// node with the gossip key but a foreign node certificate that is alive during
// the first formation counts toward bootstrap_expect and becomes a voter.
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
