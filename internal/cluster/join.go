package cluster

// runJoin joins the servers in cfg.Join, retrying every RetryJoinInterval until one
// responds. Afterwards it reconnects on the same interval, so that a network
// partition longer than memberlist's gossip-to-the-dead time heals by itself.
func (m *Manager) runJoin() {
	joined := len(m.joinTargets()) == 0
	for attempt := 1; ; attempt++ {
		if m.leaving.Load() {
			return
		}
		if joined {
			m.reconnect()
		} else {
			joined = m.join(attempt)
		}
		if !m.sleep(m.cfg.RetryJoinInterval, nil) {
			return
		}
	}
}

// joinTargets returns cfg.Join without this node's own gossip address.
func (m *Manager) joinTargets() []string {
	self := m.GossipAddr()
	var targets []string
	for _, address := range m.cfg.Join {
		if address != self {
			targets = append(targets, address)
		}
	}
	return targets
}

// join tries every join address once and reports whether one responded.
func (m *Manager) join(attempt int) bool {
	targets := m.joinTargets()
	contacted, err := m.memberlist().Join(targets)
	if contacted > 0 {
		m.log.Info("joined the cluster through gossip", "join", targets,
			"contacted", contacted, "attempt", attempt)
		if err != nil {
			m.log.Warn("some join addresses did not respond", "error", err)
		}
		return true
	}
	m.log.Warn("cannot join the cluster; retrying", "join", targets, "attempt", attempt,
		"retry_in", m.cfg.RetryJoinInterval, "error", err)
	return false
}

// reconnect contacts dead members that are still in the Raft configuration, and
// the join addresses when no other member is alive. memberlist stops gossiping
// with a dead member after GossipToTheDeadTime, so without this two sides of a
// long partition would never find each other again.
func (m *Manager) reconnect() {
	configured := m.configuredServers()
	var targets []string
	alive := 0
	for _, entry := range m.memberSnapshot() {
		if entry.name == m.cfg.NodeName {
			continue
		}
		switch entry.status {
		case StatusAlive, StatusLeaving:
			alive++
		case StatusDead:
			if _, ok := configured[entry.name]; ok {
				targets = append(targets, entry.gossipAddr)
			}
		}
	}
	if alive == 0 {
		targets = append(targets, m.joinTargets()...)
	}
	if len(targets) == 0 {
		return
	}
	contacted, err := m.memberlist().Join(targets)
	if contacted > 0 {
		m.log.Info("reconnected to gossip members", "addresses", targets,
			"contacted", contacted)
		return
	}
	m.log.Debug("cannot reconnect to gossip members", "addresses", targets, "error", err)
}
