// Package forward carries requests from a follower to the Raft leader over the
// Raft port itself: a connection whose first byte is ForwardByte is an HTTP
// connection to the forwarding server, and any other connection is Raft's. Both
// share the stream layer, so forwarded writes get the same mutual TLS as Raft.
package forward
