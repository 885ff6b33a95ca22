package node

import (
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/raft"
)

// parseRecord decodes a stored bundle. Stored documents were validated before
// they were written, so a failure means the store is damaged.
func parseRecord(rec raft.BundleRecord) (*bundle.Bundle, error) {
	td, err := spiffeid.TrustDomainFromString(rec.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("node: stored bundle has invalid trust domain %q: %w",
			rec.TrustDomain, err)
	}
	b, _, err := bundle.Parse(td, rec.Document)
	if err != nil {
		return nil, fmt.Errorf("node: stored bundle of %s cannot be parsed: %w", rec.TrustDomain, err)
	}
	return b, nil
}

// newRecord encodes b into a record for the store.
func newRecord(b *bundle.Bundle, source raft.Source, now time.Time) (raft.BundleRecord, error) {
	doc, err := bundle.Marshal(b)
	if err != nil {
		return raft.BundleRecord{}, err
	}
	return raft.BundleRecord{
		TrustDomain: b.TrustDomain.Name(),
		Document:    doc,
		Sequence:    b.Sequence,
		HasSequence: b.HasSequence,
		Source:      source,
		UpdatedAt:   now.UTC(),
	}, nil
}
