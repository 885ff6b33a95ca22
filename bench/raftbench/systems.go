package main

import (
	"context"
	"fmt"
	"time"

	hraft "github.com/hashicorp/raft"

	"github.com/bundlex/bundlex/raft"
)

// applyTimeout bounds one write of every system, as raft.DefaultApplyTimeout bounds
// one raft.Store.Apply.
const applyTimeout = raft.DefaultApplyTimeout

// system is one of the clusters under test.
type system interface {
	name() string
	// prepare builds writer w's next write. It runs outside the timed section, and
	// the returned function is the commit that the benchmark times.
	prepare(wl *workload, kind workloadKind, w int) (func() error, error)
}

type bundlexSystem struct{ store *raft.Store }

func (bundlexSystem) name() string { return "bundlex" }

// prepare times raft.Store.Apply as a caller sees it: validation, encoding, the
// commit and the leader's state machine.
func (s bundlexSystem) prepare(wl *workload, kind workloadKind, w int) (func() error,
	error) {
	cmd := wl.next(kind, w)
	return func() error { return s.store.Apply(context.Background(), cmd) }, nil
}

// rawVariant is one configuration of the raw hashicorp/raft baseline.
type rawVariant struct {
	name string
	// dir is the prefix of the nodes' data directories.
	dir    string
	newFSM func() hraft.FSM
	// directWait makes the writer block in ApplyFuture.Error itself. Otherwise it
	// waits as raft.Store.Apply does, in a second goroutine with a context.
	directWait bool
}

// The raw baselines. rawReference is the one the targets compare bundlex with. The
// other two separate costs: rawDirectWait shows how much the way a writer waits
// changes hashicorp/raft's batching, and rawDecoding adds the decoding of each
// entry that the bundlex state machine does on every node.
var (
	rawReference = rawVariant{name: "raw hashicorp/raft", dir: "raw",
		newFSM: func() hraft.FSM { return trivialFSM{} }}
	rawDirectWait = rawVariant{name: "raw, direct wait", dir: "raw-direct",
		newFSM: func() hraft.FSM { return trivialFSM{} }, directWait: true}
	rawDecoding = rawVariant{name: "raw + JSON decode", dir: "raw-decode",
		newFSM: func() hraft.FSM { return decodingFSM{} }}
)

type rawSystem struct {
	variant rawVariant
	node    *hraft.Raft
}

func (s rawSystem) name() string { return s.variant.name }

// prepare encodes the entry before the timed section, so the baseline times only
// hashicorp/raft's commit and its state machine.
func (s rawSystem) prepare(wl *workload, kind workloadKind, w int) (func() error, error) {
	entry, err := encodeEntry(wl.next(kind, w))
	if err != nil {
		return nil, err
	}
	if s.variant.directWait {
		return func() error { return result(s.node.Apply(entry, applyTimeout)) }, nil
	}
	return func() error { return s.applyLikeStore(entry) }, nil
}

// applyLikeStore waits for the commit the way raft.Store.Apply in raft/apply.go
// does: with a context deadline and a goroutine that blocks in ApplyFuture.Error.
// The way a writer waits changes how many entries hashicorp/raft v1.7.2 gathers
// into one disk write, so the reference baseline must wait the same way as bundlex.
func (s rawSystem) applyLikeStore(entry []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	future := s.node.Apply(entry, time.Until(deadline))
	done := make(chan error, 1)
	go func() { done <- result(future) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("raftbench: raw write did not finish: %w", ctx.Err())
	}
}

// result returns the error of a finished apply or the state machine's rejection.
func result(future hraft.ApplyFuture) error {
	if err := future.Error(); err != nil {
		return err
	}
	if rejection, ok := future.Response().(error); ok {
		return rejection
	}
	return nil
}
