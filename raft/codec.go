package raft

import (
	"encoding/json"
	"fmt"
)

// entryVersion is the first byte of every log entry. Raise it when the meaning of an
// existing command changes, because old nodes would otherwise apply the new entries
// with the old rules. New commands only need a new kind.
const entryVersion byte = 2

// commandKind is the second byte of a log entry. Values are written to disk: never
// renumber or reuse one.
type commandKind byte

const (
	kindPutLocalBundle        commandKind = 1
	kindCreateRelationship    commandKind = 2
	kindUpdateRelationship    commandKind = 3
	kindDeleteRelationship    commandKind = 4
	kindPutFederatedBundle    commandKind = 5
	kindDeleteFederatedBundle commandKind = 6
	kindPutPeerStatus         commandKind = 7
	kindPutNodeKeys           commandKind = 8
	kindDeleteNodeKeys        commandKind = 9
)

func (k commandKind) String() string {
	switch k {
	case kindPutLocalBundle:
		return "put_local_bundle"
	case kindCreateRelationship:
		return "create_relationship"
	case kindUpdateRelationship:
		return "update_relationship"
	case kindDeleteRelationship:
		return "delete_relationship"
	case kindPutFederatedBundle:
		return "put_federated_bundle"
	case kindDeleteFederatedBundle:
		return "delete_federated_bundle"
	case kindPutPeerStatus:
		return "put_peer_status"
	case kindPutNodeKeys:
		return "put_node_keys"
	case kindDeleteNodeKeys:
		return "delete_node_keys"
	}
	return fmt.Sprintf("command_kind_%d", byte(k))
}

// encodeCommand returns the log entry for cmd: the version byte, the kind byte and
// the command as JSON.
func encodeCommand(cmd Command) ([]byte, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("raft: encode %s command for trust domain %q: %w",
			cmd.kind(), cmd.trustDomain(), err)
	}
	entry := make([]byte, 0, 2+len(body))
	entry = append(entry, entryVersion, byte(cmd.kind()))
	return append(entry, body...), nil
}

// decodeCommand parses a log entry written by encodeCommand.
func decodeCommand(entry []byte) (Command, error) {
	if len(entry) < 2 {
		return nil, fmt.Errorf("raft: log entry of %d bytes is too short for the "+
			"version and command kind", len(entry))
	}
	if entry[0] != entryVersion {
		return nil, fmt.Errorf("raft: log entry version %d is not supported (this "+
			"node reads version %d); upgrade this node", entry[0], entryVersion)
	}
	kind := commandKind(entry[1])
	body := entry[2:]
	switch kind {
	case kindPutLocalBundle:
		return decodeBody[PutLocalBundle](kind, body)
	case kindCreateRelationship:
		return decodeBody[CreateRelationship](kind, body)
	case kindUpdateRelationship:
		return decodeBody[UpdateRelationship](kind, body)
	case kindDeleteRelationship:
		return decodeBody[DeleteRelationship](kind, body)
	case kindPutFederatedBundle:
		return decodeBody[PutFederatedBundle](kind, body)
	case kindDeleteFederatedBundle:
		return decodeBody[DeleteFederatedBundle](kind, body)
	case kindPutPeerStatus:
		return decodeBody[PutPeerStatus](kind, body)
	case kindPutNodeKeys:
		return decodeBody[PutNodeKeys](kind, body)
	case kindDeleteNodeKeys:
		return decodeBody[DeleteNodeKeys](kind, body)
	}
	return nil, fmt.Errorf("raft: unknown command kind %d in log entry; upgrade this node",
		byte(kind))
}

func decodeBody[T Command](kind commandKind, body []byte) (Command, error) {
	var cmd T
	if err := json.Unmarshal(body, &cmd); err != nil {
		return nil, fmt.Errorf("raft: decode %s log entry: %w", kind, err)
	}
	return cmd, nil
}
