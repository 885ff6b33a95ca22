package raft

import (
	"context"
	"errors"
	"fmt"
	"time"

	hraft "github.com/hashicorp/raft"
)

// Apply validates cmd, writes it to the Raft log and waits until this node's state
// machine applied it. It returns nil when the change is stored, the state machine's
// rejection (wrapping [ErrConflict], [ErrExists], [ErrNotFound] or
// [ErrSequenceRollback]), [ErrNotLeader] on a node that is not the leader, or
// [ErrTimeout] when cfg.ApplyTimeout or the context's deadline passes first.
//
// An entry whose wait ended by timeout, cancellation or lost leadership may still
// be committed later, so retry with a command that is safe to apply twice, such as
// a compare-and-set.
func (s *Store) Apply(ctx context.Context, cmd Command) error {
	if cmd == nil {
		return errors.New("raft: the command is nil; pass one of the command types " +
			"of this package")
	}
	prepared, err := cmd.prepare()
	if err != nil {
		return err
	}
	entry, err := encodeCommand(prepared)
	if err != nil {
		return err
	}
	switch s.raft.State() {
	case hraft.Leader:
	case hraft.Shutdown:
		return fmt.Errorf("raft: node %s cannot apply %s for %s: %w; open the store again",
			s.cfg.NodeID, prepared.kind(), prepared.trustDomain(), hraft.ErrRaftShutdown)
	default:
		return s.notLeaderError(prepared, nil)
	}

	ctx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	future := s.raft.Apply(entry, time.Until(deadline))
	done := make(chan error, 1)
	go func() { done <- future.Error() }()

	select {
	case err := <-done:
		if err != nil {
			return s.raftError(prepared, err)
		}
	case <-ctx.Done():
		return fmt.Errorf("raft: %s for %s did not finish on node %s: %w; the entry may "+
			"still be committed, so reread the state before retrying",
			prepared.kind(), prepared.trustDomain(), s.cfg.NodeID, contextError(ctx))
	}
	if rejection, ok := future.Response().(error); ok {
		return rejection
	}
	return nil
}

// raftError maps a hashicorp/raft error from an apply to this package's errors.
func (s *Store) raftError(cmd Command, err error) error {
	switch {
	case errors.Is(err, hraft.ErrNotLeader),
		errors.Is(err, hraft.ErrLeadershipLost),
		errors.Is(err, hraft.ErrLeadershipTransferInProgress):
		return s.notLeaderError(cmd, err)
	case errors.Is(err, hraft.ErrEnqueueTimeout):
		return fmt.Errorf("raft: %w: %s for %s was not accepted by Raft on node %s "+
			"before the deadline; retry later", ErrTimeout, cmd.kind(), cmd.trustDomain(),
			s.cfg.NodeID)
	}
	return fmt.Errorf("raft: apply %s for %s on node %s: %w",
		cmd.kind(), cmd.trustDomain(), s.cfg.NodeID, err)
}

// notLeaderError names the known leader so that the caller can forward. cause is
// hashicorp/raft's error when there is one.
func (s *Store) notLeaderError(cmd Command, cause error) error {
	next := "no leader is known, so retry once one is elected"
	if leaderAddr, leaderID := s.raft.LeaderWithID(); leaderID != "" {
		next = fmt.Sprintf("the leader is %s at %s, so send the request there",
			leaderID, leaderAddr)
	}
	detail := ""
	if errors.Is(cause, hraft.ErrLeadershipLost) {
		detail = " because leadership was lost after the entry was sent, so it may " +
			"still be committed"
	}
	return fmt.Errorf("raft: %w: node %s in state %s cannot apply %s for %s%s; %s",
		ErrNotLeader, s.cfg.NodeID, s.raft.State(), cmd.kind(), cmd.trustDomain(),
		detail, next)
}

// contextError wraps ctx.Err(), with ErrTimeout added when the deadline passed.
func contextError(ctx context.Context) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}
