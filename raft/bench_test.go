package raft

import (
	"testing"

	"github.com/hashicorp/go-hclog"
)

// BenchmarkApplyPeerStatus measures one Apply on a single-node store, which
// includes the fsync of the BoltDB log.
func BenchmarkApplyPeerStatus(b *testing.B) {
	cfg := Config{
		NodeID:    "n1",
		DataDir:   b.TempDir(),
		BindAddr:  "127.0.0.1:0",
		Bootstrap: true,
		Logger:    hclog.NewNullLogger(),
	}
	s, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := b.Context()
	if err := s.WaitForLeader(ctx); err != nil {
		b.Fatal(err)
	}
	create := CreateRelationship{Relationship: relationship("org-a.test")}
	if err := s.Apply(ctx, create); err != nil {
		b.Fatal(err)
	}
	status := peerStatus("org-a.test", 0)
	for i := 0; b.Loop(); i++ {
		status.ConsecutiveFailures = i
		if err := s.Apply(ctx, PutPeerStatus{Status: status}); err != nil {
			b.Fatal(err)
		}
	}
}
