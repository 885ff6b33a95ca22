package raft

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

// CatchUpPollInterval is how often the store checks whether its state machine has
// caught up, in addition to every applied entry and leader change. A commit that
// reaches no state machine call, such as a new leader's no-op entry, is noticed
// within this interval.
const CatchUpPollInterval = 20 * time.Millisecond

// catchUp tracks whether this node's state machine has caught up after Open.
//
// hashicorp/raft v1.7.2 restores the newest snapshot in NewRaft and applies the
// log entries after it only as the commit index advances: a leader once its
// no-op entry of the new term commits, a follower as the leader's AppendEntries
// arrive. Until then the state machine holds an older state than the node had
// before the restart, for about as long as an election takes.
//
// The state is current once all of these hold at one check:
//   - a leader is known (this node or another),
//   - the entry at this node's commit index belongs to the current term, and
//   - the state machine has applied every command and configuration entry up to
//     the commit index.
//
// A leader commits an entry of its own term only after an entry of that term
// reached a quorum, and the Raft leader completeness property puts every entry
// committed in an earlier term before it. A follower's commit index is
// min(leader commit, own last index), and its log still holds everything it
// applied before the restart. So the commit index covers every entry this node
// applied before the restart, also when a new leader truncated an uncommitted
// tail of this node's log, and the check never waits for an entry that is gone.
type catchUp struct {
	done chan struct{}
	once sync.Once

	mu     sync.Mutex
	reason string
}

func newCatchUp() *catchUp {
	return &catchUp{done: make(chan struct{}), reason: "the store is opening"}
}

func (c *catchUp) setReason(reason string) {
	c.mu.Lock()
	c.reason = reason
	c.mu.Unlock()
}

// markCurrent closes done once and reports whether this call closed it.
func (c *catchUp) markCurrent() bool {
	closed := false
	c.once.Do(func() {
		c.setReason("")
		close(c.done)
		closed = true
	})
	return closed
}

// Current returns a channel that is closed once this node's state machine has
// caught up with the state the node had before it stopped and with the commit
// index of the current leader. From then on, reads never return a state older
// than the one this node returned before a restart. The channel stays open while
// no leader is known, for example in a cluster without a quorum.
func (s *Store) Current() <-chan struct{} { return s.catchUp.done }

// IsCurrent reports whether the channel of [Store.Current] is closed.
func (s *Store) IsCurrent() bool {
	select {
	case <-s.catchUp.done:
		return true
	default:
		return false
	}
}

// NotCurrentReason returns why the state is not current yet, or "" once it is.
func (s *Store) NotCurrentReason() string {
	if s.IsCurrent() {
		return ""
	}
	s.catchUp.mu.Lock()
	defer s.catchUp.mu.Unlock()
	return s.catchUp.reason
}

// WaitCurrent blocks until the state is current, ctx ends or the store closes.
func (s *Store) WaitCurrent(ctx context.Context) error {
	select {
	case <-s.catchUp.done:
		return nil
	case <-s.stop:
		return fmt.Errorf("raft: node %s closed before its state caught up", s.cfg.NodeID)
	case <-ctx.Done():
		return fmt.Errorf("raft: the state of node %s is not current (%s): %w",
			s.cfg.NodeID, s.NotCurrentReason(), contextError(ctx))
	}
}

// watchCatchUp checks the catch-up condition after every applied entry, leader
// change and CatchUpPollInterval, until the state is current or the store closes.
// Once current, it notifies the subscribers of [Store.Subscribe], so that readers
// that skipped the older states read again.
func (s *Store) watchCatchUp(opened time.Time) {
	defer s.watchers.Done()
	changes, cancelChanges := s.fsm.changes.subscribe(nil)
	defer cancelChanges()
	leaders, cancelLeaders := s.leaders.subscribe(nil)
	defer cancelLeaders()
	ticker := time.NewTicker(CatchUpPollInterval)
	defer ticker.Stop()
	for {
		current, reason := s.checkCurrent()
		if current {
			if s.catchUp.markCurrent() {
				s.logger.Info("replicated state is current", "node", s.cfg.NodeID,
					"applied_index", s.fsm.appliedIndex(), "commit_index", s.raft.CommitIndex(),
					"term", s.raft.CurrentTerm(), "after", time.Since(opened).Round(time.Millisecond))
				s.fsm.changes.publish(struct{}{})
			}
			return
		}
		s.catchUp.setReason(reason)
		select {
		case <-s.stop:
			return
		case <-changes:
		case <-leaders:
		case <-ticker.C:
		}
	}
}

// checkCurrent evaluates the catch-up condition of catchUp once and returns why
// it does not hold yet.
func (s *Store) checkCurrent() (bool, string) {
	if _, leaderID := s.raft.LeaderWithID(); leaderID == "" {
		return false, "no Raft leader is known yet"
	}
	term := s.raft.CurrentTerm()
	commit := s.raft.CommitIndex()
	if commit == 0 {
		return false, "waiting for the first commit index from the leader"
	}
	commitTerm, err := s.termAt(commit)
	if err != nil {
		return false, err.Error()
	}
	if commitTerm != term {
		return false, fmt.Sprintf("waiting for the leader to commit an entry of term %d "+
			"(the commit index %d is of term %d)", term, commit, commitTerm)
	}
	applied := s.fsm.appliedIndex()
	pending, err := s.lastStateMachineEntry(applied, commit)
	if err != nil {
		return false, err.Error()
	}
	if pending != 0 {
		return false, fmt.Sprintf("applying the log: applied index %d, committed entries "+
			"up to index %d", applied, pending)
	}
	return true, ""
}

// termAt returns the term of the log entry at index, from the log or, when
// compaction removed it, from the newest snapshot.
func (s *Store) termAt(index uint64) (uint64, error) {
	var entry hraft.Log
	err := s.logs.GetLog(index, &entry)
	if err == nil {
		return entry.Term, nil
	}
	if !errors.Is(err, hraft.ErrLogNotFound) {
		return 0, fmt.Errorf("read the log entry at the commit index %d: %v", index, err)
	}
	metas, err := s.snaps.List()
	if err != nil {
		return 0, fmt.Errorf("list the snapshots to find the term of index %d: %v", index, err)
	}
	if len(metas) > 0 && metas[0].Index == index {
		return metas[0].Term, nil
	}
	return 0, fmt.Errorf("the commit index %d is in neither the log nor the newest "+
		"snapshot; waiting for a later commit", index)
}

// lastStateMachineEntry returns the highest index in (applied, commit] whose entry
// reaches the state machine (a command or a configuration), or 0 when there is
// none. The state machine applies entries in order, so 0 means it has applied
// everything up to commit. Entries missing from the log were compacted into a
// snapshot, which the state machine has restored or taken.
func (s *Store) lastStateMachineEntry(applied, commit uint64) (uint64, error) {
	for index := commit; index > applied; index-- {
		var entry hraft.Log
		err := s.logs.GetLog(index, &entry)
		if errors.Is(err, hraft.ErrLogNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read the log entry at index %d: %v", index, err)
		}
		// hashicorp/raft v1.7.2 passes exactly these two types to the state
		// machine (Apply and StoreConfiguration). No-op and barrier entries do
		// not reach it and do not move the state machine's index.
		if entry.Type == hraft.LogCommand || entry.Type == hraft.LogConfiguration {
			return index, nil
		}
	}
	return 0, nil
}
