package workload

import (
	"github.com/bundlex/bundlex/bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Snapshot is a consistent view of the bundles the node holds.
type Snapshot struct {
	// Version grows with every change. The node uses the Raft applied index.
	Version uint64
	// Local is the bundle of the node's own trust domain; nil until it exists.
	Local     *bundle.Bundle
	Federated map[spiffeid.TrustDomain]*bundle.Bundle
}

// Source provides the current bundles and notifies subscribers of changes.
type Source interface {
	// Snapshot returns the current view. It may return nil before the node has
	// loaded any state.
	Snapshot() *Snapshot
	// Subscribe returns a channel that receives a value after every change, with
	// changes that arrive faster than the reader coalesced into one value, and a
	// function that ends the subscription.
	Subscribe() (<-chan struct{}, func())
}

// JWTValidator validates JWT-SVIDs for ValidateJWTSVID.
type JWTValidator interface {
	// ValidateJWTSVID returns the SPIFFE ID and claims of a valid token, or an
	// error whose message is safe to return to the caller.
	ValidateJWTSVID(token, audience string) (spiffeID string, claims map[string]any, err error)
}

// Bundles returns every bundle of the snapshot keyed by trust domain: the
// federated ones and the local one. The local bundle replaces a federated entry
// for the same trust domain, because the node is authoritative for its own trust
// domain. Nil entries are left out. A nil snapshot has no bundles.
func (s *Snapshot) Bundles() map[spiffeid.TrustDomain]*bundle.Bundle {
	if s == nil {
		return nil
	}
	out := make(map[spiffeid.TrustDomain]*bundle.Bundle, len(s.Federated)+1)
	for td, b := range s.Federated {
		if b != nil {
			out[td] = b
		}
	}
	if s.Local != nil {
		out[s.Local.TrustDomain] = s.Local
	}
	return out
}
