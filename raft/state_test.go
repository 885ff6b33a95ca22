package raft

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// requireRejected applies cmd, expects an error wrapping sentinel with the given
// text, and checks that the state did not change.
func requireRejected(t *testing.T, s *Store, cmd Command, sentinel error, want string) {
	t.Helper()
	before := viewOf(s)
	err := s.Apply(testContext(t), cmd)
	require.ErrorIs(t, err, sentinel)
	require.ErrorContains(t, err, want)
	require.Equal(t, before, viewOf(s), "a rejected command must change nothing")
}

func TestLocalBundleCompareAndSet(t *testing.T) {
	s := openLeader(t, singleNodeConfig(t, "n1", t.TempDir()))

	t.Run("stale previous sequence without bundle", func(t *testing.T) {
		requireRejected(t, s, PutLocalBundle{Record: localRecord(5), PrevSequence: 4},
			ErrConflict, "no local bundle is stored, so the previous sequence must be 0, not 4")
		_, ok := s.LocalBundle()
		require.False(t, ok)
	})
	t.Run("first bundle with zero", func(t *testing.T) {
		mustApply(t, s, PutLocalBundle{Record: localRecord(1)})
		got, ok := s.LocalBundle()
		require.True(t, ok)
		require.Equal(t, localRecord(1), got)
	})
	t.Run("zero previous sequence again", func(t *testing.T) {
		requireRejected(t, s, PutLocalBundle{Record: localRecord(2)}, ErrConflict,
			"local bundle for local.test has sequence 1, not the expected previous sequence 0")
	})
	t.Run("matching previous sequence", func(t *testing.T) {
		mustApply(t, s, PutLocalBundle{Record: localRecord(2), PrevSequence: 1})
		got, _ := s.LocalBundle()
		require.Equal(t, uint64(2), got.Sequence)
	})
	t.Run("second writer loses the race", func(t *testing.T) {
		requireRejected(t, s, PutLocalBundle{Record: localRecord(3), PrevSequence: 1},
			ErrConflict, "has sequence 2, not the expected previous sequence 1")
	})
}

func TestRelationshipLifecycle(t *testing.T) {
	s := openLeader(t, singleNodeConfig(t, "n1", t.TempDir()))
	bootstrap := federatedRecord("org-b.test", 4, SourceOperator)

	t.Run("create with bootstrap bundle", func(t *testing.T) {
		mustApply(t, s, CreateRelationship{Relationship: relationship("org-b.test"),
			Bootstrap: &bootstrap})
		rel, ok := s.Relationship("org-b.test")
		require.True(t, ok)
		require.Equal(t, relationship("org-b.test"), rel)
		stored, ok := s.FederatedBundle("org-b.test")
		require.True(t, ok)
		want := bootstrap
		want.Source = SourceBootstrap
		require.Equal(t, want, stored)
	})
	t.Run("create existing relationship", func(t *testing.T) {
		other := federatedRecord("org-b.test", 9, SourceBootstrap)
		requireRejected(t, s, CreateRelationship{Relationship: relationship("org-b.test"),
			Bootstrap: &other}, ErrExists,
			"a relationship for org-b.test with endpoint https://org-b.test:8443/ is stored")
	})
	t.Run("update keeps creation time", func(t *testing.T) {
		updated := relationship("org-b.test")
		updated.Profile = "https_web"
		updated.CreatedAt = testTime.Add(48 * time.Hour)
		updated.UpdatedAt = testTime.Add(time.Hour)
		mustApply(t, s, UpdateRelationship{Relationship: updated})
		rel, _ := s.Relationship("org-b.test")
		require.Equal(t, "https_web", rel.Profile)
		require.Equal(t, testTime.Add(time.Hour), rel.UpdatedAt)
		require.Equal(t, testTime, rel.CreatedAt)
	})
	t.Run("update missing relationship", func(t *testing.T) {
		requireRejected(t, s, UpdateRelationship{Relationship: relationship("org-x.test")},
			ErrNotFound, "no relationship for org-x.test to update")
	})
	t.Run("delete missing relationship", func(t *testing.T) {
		requireRejected(t, s, DeleteRelationship{TrustDomain: "org-x.test"},
			ErrNotFound, "no relationship for org-x.test to delete")
	})
	t.Run("relationships sorted by domain", func(t *testing.T) {
		mustApply(t, s, CreateRelationship{Relationship: relationship("org-a.test")})
		rels := s.Relationships()
		require.Len(t, rels, 2)
		require.Equal(t, "org-a.test", rels[0].TrustDomain)
		require.Equal(t, "org-b.test", rels[1].TrustDomain)
	})
}

func TestDeleteRelationshipRemovesPeer(t *testing.T) {
	s := openLeader(t, singleNodeConfig(t, "n1", t.TempDir()))
	populate(t, s)
	_, ok := s.PeerStatus("org-a.test")
	require.True(t, ok)

	mustApply(t, s, DeleteRelationship{TrustDomain: "org-a.test"})

	_, ok = s.Relationship("org-a.test")
	require.False(t, ok, "relationship must be gone")
	_, ok = s.FederatedBundle("org-a.test")
	require.False(t, ok, "federated bundle must be gone")
	_, ok = s.PeerStatus("org-a.test")
	require.False(t, ok, "peer status must be gone")
	_, ok = s.Relationship("org-b.test")
	require.True(t, ok, "other relationships stay")

	status := peerStatus("org-a.test", 1)
	requireRejected(t, s, PutPeerStatus{Status: status}, ErrNotFound,
		"no relationship for org-a.test, so its peer status is not stored")
	requireRejected(t, s, PutFederatedBundle{
		Record: federatedRecord("org-a.test", 8, SourceFetched)}, ErrNotFound,
		"no relationship for org-a.test, so its fetched bundle and peer status are not stored")
}

func TestSequenceRollbackProtection(t *testing.T) {
	s := openLeader(t, singleNodeConfig(t, "n1", t.TempDir()))
	mustApply(t, s, CreateRelationship{Relationship: relationship("org-b.test")})

	fetch := func(sequence uint64) PutFederatedBundle {
		return PutFederatedBundle{Record: federatedRecord("org-b.test", sequence, SourceFetched)}
	}
	lastFetched := func() uint64 {
		status, ok := s.PeerStatus("org-b.test")
		require.True(t, ok)
		require.True(t, status.HasFetchedSequence)
		return status.LastFetchedSequence
	}
	storedSequence := func() uint64 {
		record, ok := s.FederatedBundle("org-b.test")
		require.True(t, ok)
		return record.Sequence
	}

	t.Run("first fetch sets floor", func(t *testing.T) {
		mustApply(t, s, fetch(7))
		require.Equal(t, uint64(7), lastFetched())
		require.Equal(t, uint64(7), storedSequence())
	})
	t.Run("lower fetched sequence rejected", func(t *testing.T) {
		requireRejected(t, s, fetch(3), ErrSequenceRollback,
			"raft: sequence rollback: federated bundle for org-b.test has sequence 3, "+
				"lower than the last fetched sequence 7; keeping the stored bundle")
	})
	t.Run("rejected status not stored", func(t *testing.T) {
		cmd := fetch(3)
		status := peerStatus("org-b.test", 9)
		cmd.Status = &status
		requireRejected(t, s, cmd, ErrSequenceRollback, "has sequence 3")
	})
	t.Run("lower operator sequence rejected", func(t *testing.T) {
		requireRejected(t, s, PutFederatedBundle{
			Record: federatedRecord("org-b.test", 5, SourceOperator)},
			ErrSequenceRollback, "has sequence 5, lower than the last fetched sequence 7")
	})
	t.Run("equal sequence accepted", func(t *testing.T) {
		cmd := fetch(7)
		cmd.Record.Document = []byte(`{"keys":[],"spiffe_sequence":7,"changed":true}`)
		mustApply(t, s, cmd)
		record, _ := s.FederatedBundle("org-b.test")
		require.Equal(t, cmd.Record.Document, record.Document)
	})
	t.Run("bundle without sequence accepted", func(t *testing.T) {
		cmd := fetch(0)
		cmd.Record.HasSequence = false
		mustApply(t, s, cmd)
		record, _ := s.FederatedBundle("org-b.test")
		require.False(t, record.HasSequence)
		require.Equal(t, uint64(7), lastFetched(), "a bundle without sequence keeps the floor")
	})
	t.Run("higher sequence raises floor", func(t *testing.T) {
		mustApply(t, s, fetch(12))
		require.Equal(t, uint64(12), lastFetched())
	})
}

func TestOperatorOverrideStandsUntilRefresh(t *testing.T) {
	s := openLeader(t, singleNodeConfig(t, "n1", t.TempDir()))
	mustApply(t, s, CreateRelationship{Relationship: relationship("org-b.test")})
	mustApply(t, s, PutFederatedBundle{Record: federatedRecord("org-b.test", 7, SourceFetched)})

	override := federatedRecord("org-b.test", 2, SourceOperator)
	mustApply(t, s, PutFederatedBundle{Record: override, Override: true})
	stored, _ := s.FederatedBundle("org-b.test")
	require.Equal(t, override, stored, "the override is stored despite its lower sequence")
	status, _ := s.PeerStatus("org-b.test")
	require.Equal(t, uint64(7), status.LastFetchedSequence, "the override keeps the floor")

	requireRejected(t, s, PutFederatedBundle{
		Record: federatedRecord("org-b.test", 6, SourceFetched)},
		ErrSequenceRollback, "has sequence 6, lower than the last fetched sequence 7")

	mustApply(t, s, PutFederatedBundle{Record: federatedRecord("org-b.test", 8, SourceFetched)})
	stored, _ = s.FederatedBundle("org-b.test")
	require.Equal(t, SourceFetched, stored.Source, "the next refresh replaces the override")
	require.Equal(t, uint64(8), stored.Sequence)
}

func TestFederatedBundleWithoutRelationship(t *testing.T) {
	s := openLeader(t, singleNodeConfig(t, "n1", t.TempDir()))
	override := federatedRecord("org-z.test", 3, SourceOperator)

	t.Run("operator override stored", func(t *testing.T) {
		mustApply(t, s, PutFederatedBundle{Record: override, Override: true})
		stored, ok := s.FederatedBundle("org-z.test")
		require.True(t, ok)
		require.Equal(t, override, stored)
		_, ok = s.PeerStatus("org-z.test")
		require.False(t, ok, "no status without a relationship")
	})
	t.Run("fetched bundle rejected", func(t *testing.T) {
		requireRejected(t, s, PutFederatedBundle{
			Record: federatedRecord("org-z.test", 4, SourceFetched)},
			ErrNotFound, "no relationship for org-z.test")
	})
	t.Run("status with override rejected", func(t *testing.T) {
		status := peerStatus("org-z.test", 0)
		requireRejected(t, s, PutFederatedBundle{Record: override, Override: true,
			Status: &status}, ErrNotFound, "no relationship for org-z.test")
	})
	t.Run("delete stored bundle", func(t *testing.T) {
		mustApply(t, s, DeleteFederatedBundle{TrustDomain: "org-z.test"})
		_, ok := s.FederatedBundle("org-z.test")
		require.False(t, ok)
	})
	t.Run("delete missing bundle", func(t *testing.T) {
		requireRejected(t, s, DeleteFederatedBundle{TrustDomain: "org-z.test"},
			ErrNotFound, "no federated bundle for org-z.test to delete")
	})
}

func TestPeerStatusWrites(t *testing.T) {
	s := openLeader(t, singleNodeConfig(t, "n1", t.TempDir()))
	mustApply(t, s, CreateRelationship{Relationship: relationship("org-b.test")})

	t.Run("status stored with bundle", func(t *testing.T) {
		status := peerStatus("org-b.test", 0)
		mustApply(t, s, PutFederatedBundle{
			Record: federatedRecord("org-b.test", 5, SourceFetched), Status: &status})
		got, ok := s.PeerStatus("org-b.test")
		require.True(t, ok)
		status.LastFetchedSequence, status.HasFetchedSequence = 5, true
		require.Equal(t, status, got)
	})
	t.Run("status write keeps floor", func(t *testing.T) {
		status := peerStatus("org-b.test", 3)
		status.LastFetchedSequence, status.HasFetchedSequence = 1, true
		mustApply(t, s, PutPeerStatus{Status: status})
		got, _ := s.PeerStatus("org-b.test")
		require.Equal(t, 3, got.ConsecutiveFailures)
		require.Equal(t, uint64(5), got.LastFetchedSequence, "a status write cannot lower it")
	})
	t.Run("status for unknown peer", func(t *testing.T) {
		requireRejected(t, s, PutPeerStatus{Status: peerStatus("org-x.test", 1)},
			ErrNotFound, "no relationship for org-x.test")
	})
	t.Run("delete bundle keeps status", func(t *testing.T) {
		mustApply(t, s, DeleteFederatedBundle{TrustDomain: "org-b.test"})
		_, ok := s.PeerStatus("org-b.test")
		require.True(t, ok)
		_, ok = s.Relationship("org-b.test")
		require.True(t, ok)
	})
}

func TestReadsReturnCopies(t *testing.T) {
	s := openLeader(t, singleNodeConfig(t, "n1", t.TempDir()))
	populate(t, s)
	before := viewOf(s)

	local, _ := s.LocalBundle()
	local.Document[0] = 'X'
	federated, _ := s.FederatedBundle("org-a.test")
	federated.Document[0] = 'X'
	s.FederatedBundles()[0].Document[0] = 'X'
	rel, _ := s.Relationship("org-a.test")
	rel.CAPEM[0] = 'X'
	rel.AllowedIDPrefixes[0] = "spiffe://evil.test"
	s.Relationships()[0].AllowedIDPrefixes[0] = "spiffe://evil.test"

	require.Equal(t, before, viewOf(s))
}

func TestInvalidCommandNotLogged(t *testing.T) {
	s := openLeader(t, singleNodeConfig(t, "n1", t.TempDir()))
	mustApply(t, s, PutLocalBundle{Record: localRecord(1)})
	index := s.Raft().LastIndex()

	err := s.Apply(testContext(t), PutLocalBundle{Record: localRecord(1), PrevSequence: 1})
	require.ErrorContains(t, err, "sequence 1 is not higher than the previous sequence 1")
	require.ErrorContains(t, s.Apply(testContext(t), nil), "the command is nil")
	require.Equal(t, index, s.Raft().LastIndex(), "an invalid command must not reach the log")
}
