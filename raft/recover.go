package raft

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	hraft "github.com/hashicorp/raft"
)

// Names of the offline recovery file under <data_dir>/raft. Open applies the file
// once and then renames it, so that a later restart does not reset the
// configuration again.
const (
	RecoveryFileName        = "peers.json"
	AppliedRecoveryFileName = "peers.json.applied"
)

// RecoveryServer is one server of a recovery configuration, in the peers.json
// format that hashicorp/raft's ReadConfigJSON reads.
type RecoveryServer struct {
	// ID is the server's Raft ID, the node name in bundlex.
	ID string `json:"id"`
	// Address is the host:port of the server's Raft transport.
	Address string `json:"address"`
	// NonVoter makes the server a non-voter. The zero value is a voter.
	NonVoter bool `json:"non_voter"`
}

// WriteRecoveryFile writes <dataDir>/raft/peers.json for an offline recovery of a
// cluster that lost its quorum. Write the same file on every surviving server
// while they are stopped, then start them: Open replaces their Raft configuration
// with servers before Raft starts. Recovery commits every entry in the survivor's
// log, including entries that never reached a quorum, so use it only when the
// lost servers are not coming back.
func WriteRecoveryFile(dataDir string, servers []RecoveryServer) error {
	if err := validateRecoveryServers(servers); err != nil {
		return err
	}
	content, err := json.MarshalIndent(servers, "", "  ")
	if err != nil {
		return fmt.Errorf("raft: encode the recovery configuration: %w", err)
	}

	dir := filepath.Join(dataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("raft: create the Raft directory %s: %w", dir, err)
	}
	// Write a temporary file and rename it, so that a crash never leaves a partial
	// peers.json for the next Open to reject.
	tmp, err := os.CreateTemp(dir, RecoveryFileName+".*.tmp")
	if err != nil {
		return fmt.Errorf("raft: create a recovery file in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(content, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("raft: write the recovery file %s: %w", tmp.Name(), err)
	}

	path := filepath.Join(dir, RecoveryFileName)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("raft: move the recovery file to %s: %w", path, err)
	}
	return nil
}

// validateRecoveryServers applies the checks of hashicorp/raft's configuration
// check ahead of time, so that a bad file is rejected when written and not at
// the next start.
func validateRecoveryServers(servers []RecoveryServer) error {
	ids := map[string]bool{}
	addresses := map[string]bool{}
	voters := 0
	for i, server := range servers {
		switch {
		case server.ID == "":
			return fmt.Errorf("raft: recovery server %d has an empty ID; set the node name",
				i)
		case ids[server.ID]:
			return fmt.Errorf("raft: recovery server ID %q is listed twice; list each "+
				"server once", server.ID)
		case addresses[server.Address]:
			return fmt.Errorf("raft: recovery address %q is listed twice; give each "+
				"server its own Raft address", server.Address)
		}
		if _, _, err := net.SplitHostPort(server.Address); err != nil {
			return fmt.Errorf("raft: recovery server %s has the address %q: %w; set the "+
				"host:port of its Raft transport", server.ID, server.Address, err)
		}
		ids[server.ID] = true
		addresses[server.Address] = true
		if !server.NonVoter {
			voters++
		}
	}
	if voters == 0 {
		return fmt.Errorf("raft: the recovery configuration of %d servers has no voter; "+
			"list at least one surviving server as a voter", len(servers))
	}
	return nil
}

// recoverFromFile applies <dir>/peers.json when it exists: it replaces this node's
// Raft configuration with the file's servers through hashicorp/raft's
// RecoverCluster, then renames the file to peers.json.applied.
func (s *Store) recoverFromFile(dir string, conf *hraft.Config, snaps hraft.SnapshotStore,
	transport hraft.Transport) error {
	path := filepath.Join(dir, RecoveryFileName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("raft: check for the recovery file %s: %w", path, err)
	}
	membership, err := hraft.ReadConfigJSON(path)
	if err != nil {
		return fmt.Errorf("raft: read the recovery file %s: %w; fix it or delete it "+
			"to start without recovery", path, err)
	}
	if !containsServer(membership.Servers, conf.LocalID) {
		return fmt.Errorf("raft: the recovery file %s does not list this node %s; add it "+
			"with its Raft address, or delete the file on a node that should stay out",
			path, conf.LocalID)
	}
	s.logger.Warn("recovering the Raft configuration from a recovery file; every entry "+
		"in this node's log is now treated as committed", "node", conf.LocalID,
		"file", path, "servers", fmt.Sprint(membership.Servers))
	// hashicorp/raft leaves the FSM given to RecoverCluster unusable, so it gets a
	// throwaway one and NewRaft restores the real one from the new snapshot.
	scratch := newFSM(s.logger.Named("recovery-fsm"))
	if err := hraft.RecoverCluster(conf, scratch, s.logs, s.bolt, snaps, transport,
		membership); err != nil {
		return fmt.Errorf("raft: recover the cluster from %s on node %s: %w; a node "+
			"without Raft state cannot be recovered, so delete the file there",
			path, conf.LocalID, err)
	}
	applied := filepath.Join(dir, AppliedRecoveryFileName)
	if err := os.Rename(path, applied); err != nil {
		return fmt.Errorf("raft: rename the applied recovery file %s to %s: %w; delete "+
			"it by hand, or the next start recovers again", path, applied, err)
	}
	s.logger.Warn("recovered the Raft configuration; the recovery file is renamed so "+
		"that it is applied once", "node", conf.LocalID, "applied_file", applied)
	return nil
}
