package cluster

import (
	"cmp"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	hraft "github.com/hashicorp/raft"
)

// Status is a member's gossip status.
type Status string

// Member statuses. memberlist v0.5.4 does not expose its suspect state through
// its public API, so a suspect member shows as alive until gossip declares it
// dead.
const (
	// StatusAlive is a member that responds to gossip probes.
	StatusAlive Status = "alive"
	// StatusLeaving is an alive member that started a graceful leave.
	StatusLeaving Status = "leaving"
	// StatusLeft is a member that left gracefully.
	StatusLeft Status = "left"
	// StatusDead is a member that stopped responding to probes without leaving.
	StatusDead Status = "dead"
	// StatusUnknown is a server in the Raft configuration that this node has not
	// heard of through gossip since it started.
	StatusUnknown Status = "unknown"
)

// Raft suffrages of Member.Suffrage.
const (
	SuffrageVoter    = "voter"
	SuffrageNonvoter = "nonvoter"
	SuffrageStaging  = "staging"
)

// Member is one server as gossip and the Raft configuration describe it.
type Member struct {
	// Name is the node name, which is also the Raft server ID.
	Name string
	// GossipAddr is the member's gossip host:port, empty for StatusUnknown.
	GossipAddr string
	Status     Status
	// RaftAddr is the Raft address the member advertises in gossip, or the one in
	// the Raft configuration for StatusUnknown.
	RaftAddr string
	// RPCAddr is the RPC address the member advertises, empty if none.
	RPCAddr string
	// Suffrage is SuffrageVoter, SuffrageNonvoter or SuffrageStaging when the
	// member is in this node's latest Raft configuration, and empty otherwise.
	Suffrage string
	// ConfigRaftAddr is the member's address in the Raft configuration, empty
	// when it is not in it. It differs from RaftAddr until the leader updates it.
	ConfigRaftAddr string
	// HasRaftState reports whether the member advertised that it has Raft state.
	HasRaftState bool
	// LastIndex is the last Raft log index the member advertised.
	LastIndex uint64
	// RaftProbeError is the error of the last failed Config.RaftProbe of the
	// member's Raft address, the reason the leader does not add it to the Raft
	// configuration. Only the leader reports it, so it is empty on other nodes.
	// It is also empty for members that passed or are in the configuration.
	RaftProbeError string
	// RaftProbeFailingSince is when the member's current run of probe failures
	// began, zero when RaftProbeError is empty.
	RaftProbeFailingSince time.Time
}

// memberEntry is the manager's record of one gossip member.
type memberEntry struct {
	name       string
	gossipAddr string
	status     Status
	// since is when the status last changed.
	since time.Time
	meta  nodeMeta
	// metaErr is the error from decoding the member's metadata, nil on success.
	metaErr error
}

func (m *Manager) setNode(entry *memberEntry, node *memberlist.Node) {
	entry.gossipAddr = net.JoinHostPort(node.Addr.String(), strconv.Itoa(int(node.Port)))
	entry.meta, entry.metaErr = decodeMeta(node.Meta)
	if entry.metaErr == nil && m.cfg.AddressBook != nil {
		m.cfg.AddressBook.setFromGossip(node.Name, entry.meta.RaftAddr)
	}
}

// usable reports whether the member is alive with metadata that names a Raft
// address.
func (e memberEntry) usable() bool {
	return e.status == StatusAlive && e.metaErr == nil
}

func (m *Manager) recordJoin(node *memberlist.Node) {
	m.mu.Lock()
	entry := &memberEntry{name: node.Name, status: StatusAlive, since: time.Now()}
	m.setNode(entry, node)
	if entry.metaErr == nil && entry.meta.Leaving {
		entry.status = StatusLeaving
	}
	m.members[node.Name] = entry
	joined := *entry
	m.mu.Unlock()
	m.log.Info("gossip member joined", "member", node.Name,
		"gossip_address", joined.gossipAddr, "raft_address", joined.meta.RaftAddr)
	if joined.metaErr != nil {
		m.log.Warn("gossip member has unusable metadata; it is not added to Raft "+
			"until it sends valid metadata", "member", node.Name, "error", joined.metaErr)
	}
	m.kick()
}

func (m *Manager) recordLeave(node *memberlist.Node) {
	m.mu.Lock()
	entry, ok := m.members[node.Name]
	if !ok {
		entry = &memberEntry{name: node.Name}
		m.members[node.Name] = entry
	}
	m.setNode(entry, node)
	// memberlist reports a graceful leave and a failure alike, so the leaving
	// flag that the member set in its metadata before leaving distinguishes them.
	entry.status = StatusDead
	if entry.metaErr == nil && entry.meta.Leaving {
		entry.status = StatusLeft
	}
	entry.since = time.Now()
	departed := *entry
	m.mu.Unlock()
	m.log.Info("gossip member "+string(departed.status), "member", node.Name,
		"gossip_address", departed.gossipAddr)
	m.kick()
}

func (m *Manager) recordUpdate(node *memberlist.Node) {
	m.mu.Lock()
	entry, ok := m.members[node.Name]
	if !ok {
		entry = &memberEntry{name: node.Name, status: StatusAlive, since: time.Now()}
		m.members[node.Name] = entry
	}
	previous := entry.meta
	m.setNode(entry, node)
	if entry.metaErr == nil && entry.meta.Leaving && entry.status == StatusAlive {
		entry.status = StatusLeaving
		entry.since = time.Now()
	}
	current, metaErr := entry.meta, entry.metaErr
	m.mu.Unlock()
	switch {
	case metaErr != nil:
		m.log.Warn("gossip member sent unusable metadata", "member", node.Name,
			"error", metaErr)
	case previous.RaftAddr != current.RaftAddr:
		m.log.Info("gossip member advertises a new Raft address", "member", node.Name,
			"old_raft_address", previous.RaftAddr, "raft_address", current.RaftAddr)
	case !previous.Leaving && current.Leaving:
		m.log.Info("gossip member is leaving", "member", node.Name)
	}
	m.kick()
}

// memberSnapshot returns copies of the member records, sorted by name.
func (m *Manager) memberSnapshot() []memberEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	entries := make([]memberEntry, 0, len(m.members))
	for _, entry := range m.members {
		entries = append(entries, *entry)
	}
	slices.SortFunc(entries, func(a, b memberEntry) int { return cmp.Compare(a.name, b.name) })
	return entries
}

// pruneMembers deletes dead and left members that stayed so for
// DeadMemberRetention and are not in the latest Raft configuration. It also
// records configured addresses in the address book.
func (m *Manager) pruneMembers() {
	configured := m.configuredServers()
	if m.cfg.AddressBook != nil {
		m.cfg.AddressBook.setFromConfig(configured)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for name, entry := range m.members {
		deadOrLeft := entry.status == StatusDead || entry.status == StatusLeft
		_, inConfig := configured[name]
		if deadOrLeft && !inConfig && now.Sub(entry.since) > m.cfg.DeadMemberRetention {
			delete(m.members, name)
		}
	}
}

// Members returns every server known to gossip or in this node's latest Raft
// configuration, sorted by name. Servers only in the configuration have
// StatusUnknown.
func (m *Manager) Members() []Member {
	configured := m.configuredServers()
	m.mu.Lock()
	failures := maps.Clone(m.probeFailures)
	m.mu.Unlock()
	var members []Member
	for _, entry := range m.memberSnapshot() {
		member := Member{
			Name:         entry.name,
			GossipAddr:   entry.gossipAddr,
			Status:       entry.status,
			RaftAddr:     entry.meta.RaftAddr,
			RPCAddr:      entry.meta.RPCAddr,
			HasRaftState: entry.meta.RaftState == 1,
			LastIndex:    entry.meta.LastIndex,
		}
		if server, ok := configured[entry.name]; ok {
			member.Suffrage = suffrageName(server.Suffrage)
			member.ConfigRaftAddr = string(server.Address)
			delete(configured, entry.name)
		} else if failure, ok := failures[entry.name]; ok {
			member.RaftProbeError = failure.err.Error()
			member.RaftProbeFailingSince = failure.since
		}
		members = append(members, member)
	}
	for _, server := range configured {
		members = append(members, Member{
			Name:           string(server.ID),
			Status:         StatusUnknown,
			RaftAddr:       string(server.Address),
			Suffrage:       suffrageName(server.Suffrage),
			ConfigRaftAddr: string(server.Address),
		})
	}
	slices.SortFunc(members, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return members
}

// RPCAddr returns the RPC address that an alive member advertises, for example
// the leader's to forward a request to. It returns false for a member that is
// not alive or advertises none.
func (m *Manager) RPCAddr(nodeName string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	entry, ok := m.members[nodeName]
	if !ok || entry.metaErr != nil || entry.meta.RPCAddr == "" {
		return "", false
	}
	if entry.status != StatusAlive && entry.status != StatusLeaving {
		return "", false
	}
	return entry.meta.RPCAddr, true
}

// configuredServers returns the servers of this node's latest Raft configuration
// by ID, empty when Raft cannot read it.
func (m *Manager) configuredServers() map[string]hraft.Server {
	servers, err := m.raftServers()
	if err != nil {
		m.log.Warn("cannot read the Raft configuration", "error", err)
		return map[string]hraft.Server{}
	}
	return servers
}

func suffrageName(suffrage hraft.ServerSuffrage) string {
	switch suffrage {
	case hraft.Voter:
		return SuffrageVoter
	case hraft.Nonvoter:
		return SuffrageNonvoter
	default:
		return SuffrageStaging
	}
}
