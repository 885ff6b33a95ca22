package raft

import (
	"errors"
	"fmt"

	hraft "github.com/hashicorp/raft"
)

// ErrExistingState means the node already has Raft state, so it belongs to a
// cluster and must not bootstrap another one.
var ErrExistingState = errors.New("raft state already exists")

// NodeID returns this node's Raft server ID, the ID other servers use for it in
// the configuration.
func (s *Store) NodeID() string { return s.cfg.NodeID }

// HasExistingState reports whether this node has Raft state: a log, a snapshot or
// a current term that it found at Open, or log entries or a snapshot that it
// received or bootstrapped since. Only a node without state may bootstrap.
func (s *Store) HasExistingState() bool {
	return s.existingState || s.raft.LastIndex() > 0
}

// HadStateAtOpen reports whether the stores held Raft state when Open found
// them, before any bootstrap of this run.
func (s *Store) HadStateAtOpen() bool { return s.existingState }

// BootstrapCluster forms a new cluster from servers, which should list every
// initial voter with the same IDs and addresses on each node that calls it. It
// returns an error wrapping [ErrExistingState] when this node already has Raft
// state, because bootstrapping twice could split the cluster.
func (s *Store) BootstrapCluster(servers []hraft.Server) error {
	if s.HasExistingState() {
		return fmt.Errorf("raft: node %s cannot bootstrap a cluster: %w; it already "+
			"belongs to a cluster, so let that cluster's leader add the servers",
			s.cfg.NodeID, ErrExistingState)
	}
	if !containsServer(servers, hraft.ServerID(s.cfg.NodeID)) {
		return fmt.Errorf("raft: node %s is not among the %d bootstrap servers %v; list "+
			"this node too", s.cfg.NodeID, len(servers), servers)
	}
	membership := hraft.Configuration{Servers: servers}
	err := s.raft.BootstrapCluster(membership).Error()
	if errors.Is(err, hraft.ErrCantBootstrap) {
		return fmt.Errorf("raft: node %s cannot bootstrap a cluster: %w; it received "+
			"Raft state while preparing the bootstrap", s.cfg.NodeID, ErrExistingState)
	}
	if err != nil {
		return fmt.Errorf("raft: bootstrap a cluster of %d servers on node %s: %w",
			len(servers), s.cfg.NodeID, err)
	}
	s.logger.Info("bootstrapped a new cluster", "node", s.cfg.NodeID,
		"servers", fmt.Sprint(servers))
	return nil
}

func containsServer(servers []hraft.Server, id hraft.ServerID) bool {
	for _, server := range servers {
		if server.ID == id {
			return true
		}
	}
	return false
}
