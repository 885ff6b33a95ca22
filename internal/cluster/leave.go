package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
	hraft "github.com/hashicorp/raft"

	"github.com/bundlex/bundlex/raft"
)

// Sentinel errors that callers branch on, wrapped with the node names involved.
var (
	// ErrNotLeader means this node is not the Raft leader. It is raft.ErrNotLeader,
	// so one errors.Is check covers both packages. Send the request to the leader.
	ErrNotLeader = raft.ErrNotLeader
	// ErrLastVoter means the node is the only voter, and a cluster without voters
	// cannot elect a leader. Stop the node instead, which keeps its state.
	ErrLastVoter = errors.New("last voter")
	// ErrServerAlive means the server is alive in gossip, so the leader would add
	// it again right after removing it. Stop it or let it leave first.
	ErrServerAlive = errors.New("server is alive")
	// ErrServerNotFound means the server is not in the Raft configuration.
	ErrServerNotFound = errors.New("server not found")
)

// removalPollInterval is how often Leave checks whether the leader removed this
// node from the Raft configuration.
const removalPollInterval = 100 * time.Millisecond

// Leave leaves the cluster gracefully. A leader first hands leadership to another
// voter. The node then announces in gossip that it is leaving and waits until the
// leader removed it from the Raft configuration or ctx ends. Last, it leaves gossip
// and stops like Shutdown. When this node is the only voter, Leave returns an
// error wrapping ErrLastVoter and changes nothing. It does not close the store.
func (m *Manager) Leave(ctx context.Context) error {
	m.leaveMu.Lock()
	defer m.leaveMu.Unlock()
	list := m.memberlist()
	if list == nil {
		return fmt.Errorf("cluster: node %s cannot leave before Start", m.cfg.NodeName)
	}
	select {
	case <-m.stop:
		return fmt.Errorf("cluster: node %s cannot leave after Shutdown or Leave",
			m.cfg.NodeName)
	default:
	}

	servers, err := m.raftServers()
	if err != nil {
		return err
	}
	self, inConfig := servers[m.cfg.NodeName]
	if inConfig && self.Suffrage == hraft.Voter && countVoters(servers) == 1 {
		m.log.Warn("rejected leaving the cluster because this node is the last voter")
		return fmt.Errorf("cluster: node %s cannot leave: %w; a cluster without voters "+
			"cannot elect a leader, so stop the node instead", m.cfg.NodeName,
			ErrLastVoter)
	}

	m.log.Info("leaving the cluster", "in_raft_configuration", inConfig)
	if inConfig && m.store.IsLeader() {
		m.stepDownForLeave(ctx)
	}
	// Set only now, so that this node's own reconcile loop does not hand off
	// leadership at the same time. If it leads again later, the loop hands off.
	m.leaving.Store(true)
	m.publishMeta()
	var removalErr error
	if inConfig {
		removalErr = m.waitForRemoval(ctx)
	}
	return errors.Join(removalErr, m.leaveGossip(list), m.Shutdown())
}

// leaveGossip sends the leave message unless Shutdown ran during Leave.
func (m *Manager) leaveGossip(list *memberlist.Memberlist) error {
	m.lifecycleMu.Lock()
	defer m.lifecycleMu.Unlock()
	select {
	case <-m.stop:
		return fmt.Errorf("cluster: node %s was shut down during Leave, so it did not "+
			"send the leave message; the others see it as dead", m.cfg.NodeName)
	default:
	}
	m.publishMu.Lock()
	m.leftGossip = true
	m.publishMu.Unlock()
	if err := list.Leave(m.cfg.BroadcastTimeout); err != nil {
		m.log.Warn("the leave message did not reach another member; they will see this "+
			"node as dead", "error", err)
	}
	return nil
}

// stepDownForLeave makes a leaving leader give up leadership so that the next
// leader removes it. When no other voter can take over, it removes itself, which
// hashicorp/raft completes by stepping down once the change is committed.
func (m *Manager) stepDownForLeave(ctx context.Context) {
	err := waitFuture(ctx, m.store.Raft().LeadershipTransfer())
	if err == nil {
		m.log.Info("handed Raft leadership to another voter before leaving")
		return
	}
	m.log.Warn("leadership transfer failed; removing this node as leader", "error", err)
	future := m.store.Raft().RemoveServer(hraft.ServerID(m.cfg.NodeName), 0,
		m.cfg.MembershipChangeTimeout)
	if err := waitFuture(ctx, future); err != nil {
		m.log.Error("cannot remove this node from the Raft configuration; the next "+
			"leader removes it", "error", err)
		return
	}
	m.log.Info("removed this node from the Raft configuration as leader")
}

// waitForRemoval waits until this node's latest Raft configuration no longer
// lists it. The leader replicates the change to the removed server before it
// stops replicating to it, so the node usually finds its own removal.
func (m *Manager) waitForRemoval(ctx context.Context) error {
	ticker := time.NewTicker(removalPollInterval)
	defer ticker.Stop()
	for {
		servers, err := m.raftServers()
		if err == nil {
			if _, ok := servers[m.cfg.NodeName]; !ok {
				m.log.Info("removed from the Raft configuration by the leader")
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: node %s leaves gossip before the leader removed "+
				"it from the Raft configuration: %w; the leader removes it once gossip "+
				"marks it left", m.cfg.NodeName, ctx.Err())
		case <-ticker.C:
		}
	}
}

// RemoveServer removes a failed server from the Raft configuration at an
// operator's request, ignoring DeadServerGrace and MinQuorum. It runs on the
// leader only and rejects this node itself (use Leave) and servers alive in
// gossip, which the leader would add again.
func (m *Manager) RemoveServer(ctx context.Context, name string) error {
	if !m.store.IsLeader() {
		leader, _ := m.store.Leader()
		return fmt.Errorf("cluster: %w: node %s cannot remove server %s; send the request "+
			"to the leader %q", ErrNotLeader, m.cfg.NodeName, name, leader)
	}
	if name == m.cfg.NodeName {
		return fmt.Errorf("cluster: node %s cannot remove itself; call Leave on it "+
			"instead", name)
	}

	servers, err := m.raftServers()
	if err != nil {
		return err
	}
	server, ok := servers[name]
	if !ok {
		return fmt.Errorf("cluster: %w: %s is not in the Raft configuration of %d "+
			"servers; check the name with the member list", ErrServerNotFound, name,
			len(servers))
	}

	m.mu.Lock()
	var member memberEntry
	if entry, known := m.members[name]; known {
		member = *entry
	}
	m.mu.Unlock()
	if member.status == StatusAlive {
		m.log.Warn("rejected the removal of a server that is alive in gossip",
			"member", name, "gossip_address", member.gossipAddr)
		return fmt.Errorf("cluster: %w: %s at %s responds to gossip, so the leader would "+
			"add it again; stop it or make it leave first", ErrServerAlive, name,
			member.gossipAddr)
	}
	future := m.store.Raft().RemoveServer(server.ID, 0, m.cfg.MembershipChangeTimeout)
	if err := waitFuture(ctx, future); err != nil {
		return fmt.Errorf("cluster: remove server %s at %s: %w", name, server.Address, err)
	}
	m.log.Info("removed server from the Raft configuration on operator request",
		"member", name, "raft_address", server.Address,
		"suffrage", suffrageName(server.Suffrage))
	return nil
}

// raftServers returns the servers of this node's latest Raft configuration by ID.
func (m *Manager) raftServers() (map[string]hraft.Server, error) {
	future := m.store.Raft().GetConfiguration()
	if err := future.Error(); err != nil {
		return nil, fmt.Errorf("cluster: read the Raft configuration on node %s: %w",
			m.cfg.NodeName, err)
	}
	servers := map[string]hraft.Server{}
	for _, server := range future.Configuration().Servers {
		servers[string(server.ID)] = server
	}
	return servers, nil
}

func countVoters(servers map[string]hraft.Server) int {
	voters := 0
	for _, server := range servers {
		if server.Suffrage == hraft.Voter {
			voters++
		}
	}
	return voters
}
