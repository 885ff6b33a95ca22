package node

import (
	"context"
	"errors"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/federation"
	"github.com/bundlex/bundlex/raft"
)

// pollerStore adapts the replicated store to federation.PollerStore.
type pollerStore struct{ n *Node }

func (s *pollerStore) Relationships() []federation.Relationship {
	var out []federation.Relationship
	for _, rel := range s.n.store.Relationships() {
		fr := federation.Relationship{
			TrustDomain: mustTD(rel.TrustDomain),
			URL:         rel.BundleEndpointURL,
			Profile:     federation.Profile(rel.Profile),
		}
		if rel.EndpointSPIFFEID != "" {
			id, err := spiffeid.FromString(rel.EndpointSPIFFEID)
			if err != nil {
				s.n.log.Error("stored relationship has an invalid endpoint ID; skipping it",
					"trust_domain", rel.TrustDomain, "error", err)
				continue
			}
			fr.EndpointID = id
		}
		if len(rel.CAPEM) > 0 {
			certs, err := parseCAPEM(string(rel.CAPEM))
			if err != nil {
				s.n.log.Error("stored relationship has an invalid CA file; skipping it",
					"trust_domain", rel.TrustDomain, "error", err)
				continue
			}
			fr.ExtraRootCAs = certs
		}
		out = append(out, fr)
	}
	return out
}

func (s *pollerStore) Status(td spiffeid.TrustDomain) federation.PeerStatus {
	st, _ := s.n.store.PeerStatus(td.Name())
	return fromRaftStatus(st)
}

func (s *pollerStore) Stored(td spiffeid.TrustDomain) (*bundle.Bundle, federation.PeerStatus) {
	status := s.Status(td)
	rec, ok := s.n.store.FederatedBundle(td.Name())
	if !ok {
		return nil, status
	}
	b, err := parseRecord(rec)
	if err != nil {
		s.n.log.Error("stored bundle cannot be parsed", "trust_domain", td.Name(), "error", err)
		return nil, status
	}
	status.StoredFetched = rec.Source == raft.SourceFetched
	return b, status
}

// TrustBundle returns the latest bundle of td for authenticating an https_spiffe
// endpoint: the local bundle for the node's own trust domain, else the federated one.
func (s *pollerStore) TrustBundle(td spiffeid.TrustDomain) (*x509bundle.Bundle, bool) {
	rec, ok := s.n.store.FederatedBundle(td.Name())
	if td == s.n.td {
		rec, ok = s.n.store.LocalBundle()
	}
	if !ok {
		return nil, false
	}
	b, err := parseRecord(rec)
	if err != nil {
		return nil, false
	}
	return b.X509Bundle(), true
}

func (s *pollerStore) SaveBundle(ctx context.Context, b *bundle.Bundle, status federation.PeerStatus) error {
	rec, err := newRecord(b, raft.SourceFetched, s.n.now())
	if err != nil {
		return err
	}
	st := toRaftStatus(b.TrustDomain, status)
	err = s.n.store.Apply(ctx, raft.PutFederatedBundle{Record: rec, Status: &st})
	if errors.Is(err, raft.ErrSequenceRollback) {
		return errors.Join(federation.ErrSequenceRollback, err)
	}
	return err
}

func (s *pollerStore) SaveStatus(ctx context.Context, td spiffeid.TrustDomain, status federation.PeerStatus) error {
	return s.n.store.Apply(ctx, raft.PutPeerStatus{Status: toRaftStatus(td, status)})
}

func fromRaftStatus(st raft.PeerStatus) federation.PeerStatus {
	return federation.PeerStatus{
		LastAttempt:         st.LastAttempt,
		LastSuccess:         st.LastSuccess,
		LastChange:          st.LastChange,
		NextRefresh:         st.NextRefresh,
		LastError:           st.LastError,
		ConsecutiveFailures: st.ConsecutiveFailures,
		LastFetchedSequence: st.LastFetchedSequence,
		HasFetchedSequence:  st.HasFetchedSequence,
		X509Keys:            st.X509Keys,
		JWTKeys:             st.JWTKeys,
		SkippedKeys:         st.SkippedKeys,
	}
}

func toRaftStatus(td spiffeid.TrustDomain, st federation.PeerStatus) raft.PeerStatus {
	return raft.PeerStatus{
		TrustDomain:         td.Name(),
		LastAttempt:         st.LastAttempt.UTC(),
		LastSuccess:         st.LastSuccess.UTC(),
		LastChange:          st.LastChange.UTC(),
		NextRefresh:         st.NextRefresh.UTC(),
		LastError:           st.LastError,
		ConsecutiveFailures: st.ConsecutiveFailures,
		LastFetchedSequence: st.LastFetchedSequence,
		HasFetchedSequence:  st.HasFetchedSequence,
		X509Keys:            st.X509Keys,
		JWTKeys:             st.JWTKeys,
		SkippedKeys:         st.SkippedKeys,
	}
}

// mustTD converts a stored trust domain name, which was validated before it was
// stored.
func mustTD(name string) spiffeid.TrustDomain {
	td, err := spiffeid.TrustDomainFromString(name)
	if err != nil {
		panic("node: stored trust domain " + name + " is invalid: " + err.Error())
	}
	return td
}
