package raft

import "errors"

// Sentinel errors that callers branch on. Errors returned by [Store.Apply] wrap them
// with a sentence that names the trust domain and the values involved, so compare
// with errors.Is.
var (
	// ErrConflict means the compare-and-set on the local bundle failed because the
	// stored sequence differs from the expected previous sequence. Reread the local
	// bundle and retry with its sequence.
	ErrConflict = errors.New("compare-and-set conflict")

	// ErrExists means a relationship for the trust domain already exists.
	ErrExists = errors.New("already exists")

	// ErrNotFound means the relationship or federated bundle that the command
	// refers to is not stored.
	ErrNotFound = errors.New("not found")

	// ErrSequenceRollback means a bundle's spiffe_sequence is lower than the last
	// sequence fetched from that peer, so the stored bundle was kept
	// (SPIFFE Federation 4.2).
	ErrSequenceRollback = errors.New("sequence rollback")

	// ErrNotLeader means this node is not the Raft leader, or lost leadership while
	// the entry was in flight. Send the command to the leader.
	ErrNotLeader = errors.New("not the leader")

	// ErrTimeout means an operation did not finish before its deadline. An applied
	// command that timed out may still be committed later.
	ErrTimeout = errors.New("timed out")
)
