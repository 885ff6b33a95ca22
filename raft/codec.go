package raft

import (
	"encoding/binary"
	"fmt"
	"github.com/hashicorp/go-msgpack/v2/codec"
)

// entryVersion is the first byte of every log entry. Version 4 entries are: the
// version byte, the kind byte, the length of the encoded command as a uvarint, the
// command in MessagePack with the bundle document left out, then the document's
// raw bytes. Every node decodes every entry, so the encoding is the cheap one
// hashicorp/raft itself uses, and the document is never scanned or copied twice.
// Raise it when the meaning of an
// existing command changes, because old nodes would otherwise apply the new entries
// with the old rules. New commands only need a new kind.
const entryVersion byte = 4

// entryHandle encodes and decodes commands. Times use the MessagePack timestamp
// extension, so they keep their instant; commands carry UTC times.
var entryHandle = &codec.MsgpackHandle{}

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
	header, document := splitDocument(cmd)
	var body []byte
	err := codec.NewEncoderBytes(&body, entryHandle).Encode(header)
	if err != nil {
		return nil, fmt.Errorf("raft: encode %s command for trust domain %q: %w",
			cmd.kind(), cmd.trustDomain(), err)
	}
	entry := make([]byte, 0, 2+binary.MaxVarintLen64+len(body)+len(document))
	entry = append(entry, entryVersion, byte(cmd.kind()))
	entry = binary.AppendUvarint(entry, uint64(len(body)))
	entry = append(entry, body...)
	return append(entry, document...), nil
}

// splitDocument returns cmd without its bundle document, and the document. Only
// the commands written on every fetch or publication carry it outside the JSON.
func splitDocument(cmd Command) (Command, []byte) {
	switch c := cmd.(type) {
	case PutFederatedBundle:
		doc := c.Record.Document
		c.Record.Document = nil
		return c, doc
	case PutLocalBundle:
		doc := c.Record.Document
		c.Record.Document = nil
		return c, doc
	}
	return cmd, nil
}

// joinDocument puts a document taken out by splitDocument back into cmd.
func joinDocument(cmd Command, document []byte) (Command, error) {
	switch c := cmd.(type) {
	case PutFederatedBundle:
		c.Record.Document = document
		return c, nil
	case PutLocalBundle:
		c.Record.Document = document
		return c, nil
	}
	if len(document) > 0 {
		return nil, fmt.Errorf("raft: %s log entry carries %d bytes after its command, "+
			"which this kind never has", cmd.kind(), len(document))
	}
	return cmd, nil
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
	size, n := binary.Uvarint(entry[2:])
	if n <= 0 || size > uint64(len(entry)-2-n) {
		return nil, fmt.Errorf("raft: %s log entry of %d bytes has an invalid command "+
			"length", kind, len(entry))
	}
	body := entry[2+n : 2+n+int(size)]
	document := entry[2+n+int(size):]
	cmd, err := decodeKind(kind, body)
	if err != nil {
		return nil, err
	}
	return joinDocument(cmd, document)
}

func decodeKind(kind commandKind, body []byte) (Command, error) {
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
	if err := codec.NewDecoderBytes(body, entryHandle).Decode(&cmd); err != nil {
		return nil, fmt.Errorf("raft: decode %s log entry: %w", kind, err)
	}
	return cmd, nil
}
