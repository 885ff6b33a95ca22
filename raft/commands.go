package raft

import (
	"encoding/json"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/federation"
)

// Command is one change to the replicated state, applied through [Store.Apply] as
// one log entry. The set is closed: only the command types of this package
// implement it. Every time in a record comes from the command, never from the
// clock of the node that applies it, so all nodes store the same values.
type Command interface {
	// kind returns the type tag written into the log entry.
	kind() commandKind
	// trustDomain returns the trust domain the command changes, for messages.
	trustDomain() string
	// prepare validates the command and returns it with defaults filled in. It runs
	// before the entry enters the log, so an invalid command never reaches the log.
	prepare() (Command, error)
}

// PutLocalBundle stores the local trust domain's bundle with a compare-and-set: it
// is rejected with [ErrConflict] unless the stored local bundle's sequence equals
// PrevSequence, or PrevSequence is 0 and no local bundle is stored. So two writers
// can never publish the same sequence for different content.
type PutLocalBundle struct {
	Record       BundleRecord `json:"record"`
	PrevSequence uint64       `json:"prev_sequence"`
}

// CreateRelationship adds a relationship, rejected with [ErrExists] when one exists
// for the trust domain. A non-nil Bootstrap bundle is stored with source bootstrap
// in the same entry, in place of any operator bundle stored for the trust domain.
type CreateRelationship struct {
	Relationship Relationship  `json:"relationship"`
	Bootstrap    *BundleRecord `json:"bootstrap,omitempty"`
}

// UpdateRelationship replaces a relationship and keeps its CreatedAt. It is rejected
// with [ErrNotFound] when none exists for the trust domain.
type UpdateRelationship struct {
	Relationship Relationship `json:"relationship"`
}

// DeleteRelationship removes a relationship together with its federated bundle and
// peer status in one entry, so no node keeps trusting the ended relationship
// (SPIFFE Federation 6.3). It is rejected with [ErrNotFound] when no relationship
// exists.
type DeleteRelationship struct {
	TrustDomain string `json:"trust_domain"`
}

// PutFederatedBundle stores a foreign trust domain's bundle.
//
// Unless Override is set, a record with a sequence lower than the peer's
// LastFetchedSequence is rejected with [ErrSequenceRollback] and nothing changes
// (SPIFFE Federation 4.2). A fetched record raises LastFetchedSequence. Override is
// the operator's local override: it is stored whatever its sequence and leaves
// LastFetchedSequence alone, so the override stays in effect until the next refresh.
//
// A fetched record or a non-nil Status requires a relationship and is otherwise
// rejected with [ErrNotFound], so a fetch that finishes after the relationship was
// deleted cannot bring its bundle back. An operator or bootstrap record may exist
// without a relationship.
type PutFederatedBundle struct {
	Record BundleRecord `json:"record"`
	// Status, when not nil, replaces the peer status in the same entry.
	Status   *PeerStatus `json:"status,omitempty"`
	Override bool        `json:"override"`
}

// DeleteFederatedBundle removes a foreign trust domain's bundle and keeps its
// relationship and status. It is rejected with [ErrNotFound] when no bundle is
// stored.
type DeleteFederatedBundle struct {
	TrustDomain string `json:"trust_domain"`
}

// PutPeerStatus replaces the status of a relationship. It is rejected with
// [ErrNotFound] when no relationship exists, so a late status write cannot bring
// back a deleted peer.
type PutPeerStatus struct {
	Status PeerStatus `json:"status"`
}

func (PutLocalBundle) kind() commandKind        { return kindPutLocalBundle }
func (CreateRelationship) kind() commandKind    { return kindCreateRelationship }
func (UpdateRelationship) kind() commandKind    { return kindUpdateRelationship }
func (DeleteRelationship) kind() commandKind    { return kindDeleteRelationship }
func (PutFederatedBundle) kind() commandKind    { return kindPutFederatedBundle }
func (DeleteFederatedBundle) kind() commandKind { return kindDeleteFederatedBundle }
func (PutPeerStatus) kind() commandKind         { return kindPutPeerStatus }

func (c PutLocalBundle) trustDomain() string        { return c.Record.TrustDomain }
func (c CreateRelationship) trustDomain() string    { return c.Relationship.TrustDomain }
func (c UpdateRelationship) trustDomain() string    { return c.Relationship.TrustDomain }
func (c DeleteRelationship) trustDomain() string    { return c.TrustDomain }
func (c PutFederatedBundle) trustDomain() string    { return c.Record.TrustDomain }
func (c DeleteFederatedBundle) trustDomain() string { return c.TrustDomain }
func (c PutPeerStatus) trustDomain() string         { return c.Status.TrustDomain }

// invalidCommand builds the error for a command rejected before it enters the log.
func invalidCommand(cmd Command, format string, args ...any) error {
	return fmt.Errorf("raft: invalid %s command for trust domain %q: %s",
		cmd.kind(), cmd.trustDomain(), fmt.Sprintf(format, args...))
}

func requireTrustDomain(cmd Command) error {
	if cmd.trustDomain() == "" {
		return invalidCommand(cmd, "the trust domain is empty; set it")
	}
	return nil
}

// requireDocument checks a record that a command stores. An empty source is set to
// fallback.
func requireDocument(cmd Command, rec *BundleRecord, fallback Source) error {
	if len(rec.Document) == 0 {
		return invalidCommand(cmd, "the bundle document is empty; send the JWK Set")
	}
	if !json.Valid(rec.Document) {
		return invalidCommand(cmd, "the bundle document is not JSON; send the JWK Set")
	}
	if rec.Source == "" {
		rec.Source = fallback
	}
	switch {
	case rec.Source == "":
		return invalidCommand(cmd, "the bundle source is missing; use fetched, "+
			"bootstrap or operator")
	case !rec.Source.valid():
		return invalidCommand(cmd, "unknown bundle source %q; use local, fetched, "+
			"bootstrap or operator", rec.Source)
	}
	return nil
}

func (c PutLocalBundle) prepare() (Command, error) {
	if err := requireTrustDomain(c); err != nil {
		return nil, err
	}
	if err := requireDocument(c, &c.Record, SourceLocal); err != nil {
		return nil, err
	}
	if c.Record.Source != SourceLocal {
		return nil, invalidCommand(c, "the local bundle has source %q; use %q",
			c.Record.Source, SourceLocal)
	}
	// SPIFFE Trust Domain and Bundle 4.1.1: spiffe_sequence only ever grows, and the
	// compare-and-set is keyed on it, so the local bundle must carry one.
	if !c.Record.HasSequence {
		return nil, invalidCommand(c, "the local bundle has no sequence; set spiffe_sequence")
	}
	if c.Record.Sequence <= c.PrevSequence {
		return nil, invalidCommand(c, "sequence %d is not higher than the previous "+
			"sequence %d; publish a higher sequence", c.Record.Sequence, c.PrevSequence)
	}
	return c, nil
}

func (c CreateRelationship) prepare() (Command, error) {
	if err := requireTrustDomain(c); err != nil {
		return nil, err
	}
	if err := prepareIDPrefixes(c, &c.Relationship); err != nil {
		return nil, err
	}
	if c.Bootstrap == nil {
		return c, nil
	}
	bootstrap := *c.Bootstrap
	if bootstrap.TrustDomain == "" {
		bootstrap.TrustDomain = c.Relationship.TrustDomain
	}
	if bootstrap.TrustDomain != c.Relationship.TrustDomain {
		return nil, invalidCommand(c, "the bootstrap bundle is for trust domain %q; "+
			"supply the bundle of the relationship's trust domain", bootstrap.TrustDomain)
	}
	if err := requireDocument(c, &bootstrap, SourceBootstrap); err != nil {
		return nil, err
	}
	bootstrap.Source = SourceBootstrap
	c.Bootstrap = &bootstrap
	return c, nil
}

func (c UpdateRelationship) prepare() (Command, error) {
	if err := requireTrustDomain(c); err != nil {
		return nil, err
	}
	if err := prepareIDPrefixes(c, &c.Relationship); err != nil {
		return nil, err
	}
	return c, nil
}

// prepareIDPrefixes checks the allowed ID prefixes of rel with the same function
// as the admin API and the configuration, and removes duplicates. A prefix that
// no SPIFFE ID can match never enters the log.
func prepareIDPrefixes(cmd Command, rel *Relationship) error {
	if len(rel.AllowedIDPrefixes) == 0 {
		return nil
	}
	td, err := spiffeid.TrustDomainFromString(rel.TrustDomain)
	if err != nil {
		return invalidCommand(cmd, "the trust domain is invalid (%v), so its allowed ID "+
			"prefixes cannot be checked; use a name such as example.org", err)
	}
	prefixes, err := federation.ParseIDPrefixes(td, rel.AllowedIDPrefixes)
	if err != nil {
		return invalidCommand(cmd, "%v", err)
	}
	rel.AllowedIDPrefixes = prefixes
	return nil
}

func (c DeleteRelationship) prepare() (Command, error) {
	if err := requireTrustDomain(c); err != nil {
		return nil, err
	}
	return c, nil
}

func (c PutFederatedBundle) prepare() (Command, error) {
	if err := requireTrustDomain(c); err != nil {
		return nil, err
	}
	if err := requireDocument(c, &c.Record, ""); err != nil {
		return nil, err
	}
	switch {
	case c.Record.Source == SourceLocal:
		return nil, invalidCommand(c, "a federated bundle cannot have source %q; "+
			"use PutLocalBundle for the local trust domain", SourceLocal)
	case c.Override && c.Record.Source == SourceFetched:
		return nil, invalidCommand(c, "an override must have source %q, not %q",
			SourceOperator, SourceFetched)
	}
	if c.Status != nil {
		status := *c.Status
		if status.TrustDomain == "" {
			status.TrustDomain = c.Record.TrustDomain
		}
		if status.TrustDomain != c.Record.TrustDomain {
			return nil, invalidCommand(c, "the status is for trust domain %q; "+
				"send the status of the bundle's trust domain", status.TrustDomain)
		}
		c.Status = &status
	}
	return c, nil
}

func (c DeleteFederatedBundle) prepare() (Command, error) {
	if err := requireTrustDomain(c); err != nil {
		return nil, err
	}
	return c, nil
}

func (c PutPeerStatus) prepare() (Command, error) {
	if err := requireTrustDomain(c); err != nil {
		return nil, err
	}
	return c, nil
}
