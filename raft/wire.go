package raft

// EncodeCommand returns the wire form of cmd, the same bytes as its log entry, so
// that a follower can forward a write to the leader.
func EncodeCommand(cmd Command) ([]byte, error) {
	return encodeCommand(cmd)
}

// DecodeCommand parses bytes written by EncodeCommand.
func DecodeCommand(data []byte) (Command, error) {
	return decodeCommand(data)
}
