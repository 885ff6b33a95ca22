package raft

import "fmt"

// state is the whole replicated state. Its methods implement the commands and must
// be deterministic: they read nothing but the state and the command, so every node
// reaches the same result from the same log.
type state struct {
	Local         *BundleRecord           `json:"local,omitempty"`
	Federated     map[string]BundleRecord `json:"federated"`
	Relationships map[string]Relationship `json:"relationships"`
	Statuses      map[string]PeerStatus   `json:"statuses"`
	NodeKeys      map[string]NodeKeys     `json:"node_keys,omitempty"`
}

func newState() state {
	return state{
		Federated:     map[string]BundleRecord{},
		Relationships: map[string]Relationship{},
		Statuses:      map[string]PeerStatus{},
	}
}

// apply changes the state by cmd, or returns an error and leaves it unchanged.
func (st *state) apply(cmd Command) error {
	switch c := cmd.(type) {
	case PutLocalBundle:
		return st.putLocalBundle(c)
	case CreateRelationship:
		return st.createRelationship(c)
	case UpdateRelationship:
		return st.updateRelationship(c)
	case DeleteRelationship:
		return st.deleteRelationship(c)
	case PutFederatedBundle:
		return st.putFederatedBundle(c)
	case DeleteFederatedBundle:
		return st.deleteFederatedBundle(c)
	case PutPeerStatus:
		return st.putPeerStatus(c)
	case PutNodeKeys:
		return st.putNodeKeys(c)
	case DeleteNodeKeys:
		return st.deleteNodeKeys(c)
	}
	return fmt.Errorf("raft: command type %T has no state transition", cmd)
}

func (st *state) putLocalBundle(c PutLocalBundle) error {
	switch {
	case st.Local == nil && c.PrevSequence != 0:
		return fmt.Errorf("raft: %w: no local bundle is stored, so the previous sequence "+
			"must be 0, not %d; reread the local bundle and retry", ErrConflict, c.PrevSequence)
	case st.Local != nil && st.Local.Sequence != c.PrevSequence:
		return fmt.Errorf("raft: %w: local bundle for %s has sequence %d, not the expected "+
			"previous sequence %d; reread the local bundle and retry",
			ErrConflict, st.Local.TrustDomain, st.Local.Sequence, c.PrevSequence)
	}
	record := c.Record
	st.Local = &record
	return nil
}

func (st *state) createRelationship(c CreateRelationship) error {
	td := c.Relationship.TrustDomain
	if existing, ok := st.Relationships[td]; ok {
		return fmt.Errorf("raft: %w: a relationship for %s with endpoint %s is stored; "+
			"update or delete it instead", ErrExists, td, existing.BundleEndpointURL)
	}
	st.Relationships[td] = c.Relationship
	if c.Bootstrap != nil {
		st.Federated[td] = *c.Bootstrap
	}
	return nil
}

func (st *state) updateRelationship(c UpdateRelationship) error {
	td := c.Relationship.TrustDomain
	existing, ok := st.Relationships[td]
	if !ok {
		return fmt.Errorf("raft: %w: no relationship for %s to update; create it first",
			ErrNotFound, td)
	}
	updated := c.Relationship
	updated.CreatedAt = existing.CreatedAt
	st.Relationships[td] = updated
	return nil
}

func (st *state) deleteRelationship(c DeleteRelationship) error {
	if _, ok := st.Relationships[c.TrustDomain]; !ok {
		return fmt.Errorf("raft: %w: no relationship for %s to delete",
			ErrNotFound, c.TrustDomain)
	}
	// SPIFFE Federation 6.3: ending a relationship deletes the stored bundle, and the
	// status goes with it so that nothing of the peer remains.
	delete(st.Relationships, c.TrustDomain)
	delete(st.Federated, c.TrustDomain)
	delete(st.Statuses, c.TrustDomain)
	return nil
}

func (st *state) putFederatedBundle(c PutFederatedBundle) error {
	record := c.Record
	td := record.TrustDomain
	fetched := record.Source == SourceFetched
	if _, ok := st.Relationships[td]; !ok && (fetched || c.Status != nil) {
		return fmt.Errorf("raft: %w: no relationship for %s, so its %s bundle and peer "+
			"status are not stored; the relationship was probably deleted",
			ErrNotFound, td, record.Source)
	}
	stored, hasStatus := st.Statuses[td]
	// SPIFFE Federation 4.2: bundles are ordered by spiffe_sequence, so a lower
	// sequence than the one last fetched is a rollback. Only the operator's override
	// may go back.
	if !c.Override && record.HasSequence && hasStatus && stored.HasFetchedSequence &&
		record.Sequence < stored.LastFetchedSequence {
		return fmt.Errorf("raft: %w: federated bundle for %s has sequence %d, lower than "+
			"the last fetched sequence %d; keeping the stored bundle",
			ErrSequenceRollback, td, record.Sequence, stored.LastFetchedSequence)
	}
	st.Federated[td] = record

	next, write := stored, false
	if c.Status != nil {
		next, write = mergeStatus(*c.Status, stored), true
	}
	if fetched && record.HasSequence {
		next.TrustDomain = td
		next.LastFetchedSequence = record.Sequence
		next.HasFetchedSequence = true
		write = true
	}
	if write {
		st.Statuses[td] = next
	}
	return nil
}

func (st *state) deleteFederatedBundle(c DeleteFederatedBundle) error {
	if _, ok := st.Federated[c.TrustDomain]; !ok {
		return fmt.Errorf("raft: %w: no federated bundle for %s to delete",
			ErrNotFound, c.TrustDomain)
	}
	delete(st.Federated, c.TrustDomain)
	return nil
}

func (st *state) putPeerStatus(c PutPeerStatus) error {
	td := c.Status.TrustDomain
	if _, ok := st.Relationships[td]; !ok {
		return fmt.Errorf("raft: %w: no relationship for %s, so its peer status is not "+
			"stored; the relationship was probably deleted", ErrNotFound, td)
	}
	st.Statuses[td] = mergeStatus(c.Status, st.Statuses[td])
	return nil
}

// mergeStatus returns incoming with the fields the state machine owns taken from
// stored, because the rollback floor must only rise through fetched bundles.
func mergeStatus(incoming, stored PeerStatus) PeerStatus {
	incoming.LastFetchedSequence = stored.LastFetchedSequence
	incoming.HasFetchedSequence = stored.HasFetchedSequence
	return incoming
}
