package node

import (
	"context"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/internal/admin"
	"github.com/bundlex/bundlex/raft"
)

func (b *backend) Relationships(context.Context) ([]admin.Relationship, error) {
	out := []admin.Relationship{}
	for _, rel := range b.n.store.Relationships() {
		out = append(out, b.n.toAdminRelationship(rel))
	}
	return out, nil
}

func (b *backend) Relationship(_ context.Context, name string) (admin.Relationship, error) {
	rel, err := b.n.lookupRelationship(name)
	if err != nil {
		return admin.Relationship{}, err
	}
	return b.n.toAdminRelationship(rel), nil
}

func (b *backend) CreateRelationship(ctx context.Context, req admin.RelationshipRequest) (admin.Relationship, error) {
	in, err := b.n.checkRelationship(req)
	if err != nil {
		return admin.Relationship{}, err
	}
	if err := b.n.createRelationship(ctx, in); err != nil {
		return admin.Relationship{}, storeError(err)
	}
	b.n.log.Info("federation relationship created", "trust_domain", in.rel.TrustDomain,
		"peer_url", in.rel.BundleEndpointURL, "profile", in.rel.Profile,
		"bootstrap", in.bootstrap != nil)
	return b.Relationship(ctx, in.rel.TrustDomain)
}

// UpdateRelationship changes the fields given in req and keeps the others.
func (b *backend) UpdateRelationship(ctx context.Context, name string,
	req admin.RelationshipRequest) (admin.Relationship, error) {
	stored, err := b.n.lookupRelationship(name)
	if err != nil {
		return admin.Relationship{}, err
	}
	if stored.Static {
		return admin.Relationship{}, invalidArg("the relationship with %s is defined in the "+
			"configuration file; change it there", stored.TrustDomain)
	}
	merged := mergeRequest(stored, req)
	in, err := b.n.checkRelationship(merged)
	if err != nil {
		return admin.Relationship{}, err
	}
	in.rel.CreatedAt, in.rel.UpdatedAt = stored.CreatedAt, b.n.now().UTC()
	if err := b.n.apply(ctx, raft.UpdateRelationship{Relationship: in.rel}); err != nil {
		return admin.Relationship{}, storeError(err)
	}
	if in.bootstrap != nil {
		rec, err := newRecord(in.bootstrap, raft.SourceBootstrap, b.n.now())
		if err != nil {
			return admin.Relationship{}, err
		}
		cmd := raft.PutFederatedBundle{Record: rec, Override: true}
		if err := b.n.apply(ctx, cmd); err != nil {
			return admin.Relationship{}, storeError(err)
		}
	}
	b.n.poller.Refresh(mustTD(in.rel.TrustDomain))
	b.n.log.Info("federation relationship updated", "trust_domain", in.rel.TrustDomain,
		"peer_url", in.rel.BundleEndpointURL, "profile", in.rel.Profile)
	return b.Relationship(ctx, in.rel.TrustDomain)
}

func mergeRequest(stored raft.Relationship, req admin.RelationshipRequest) admin.RelationshipRequest {
	out := admin.RelationshipRequest{
		TrustDomain:       stored.TrustDomain,
		BundleEndpointURL: stored.BundleEndpointURL,
		Profile:           stored.Profile,
		EndpointSPIFFEID:  stored.EndpointSPIFFEID,
		CAPEM:             string(stored.CAPEM),
		AllowedIDPrefixes: stored.AllowedIDPrefixes,
		Bootstrap:         req.Bootstrap,
		BootstrapFormat:   req.BootstrapFormat,
	}
	if req.BundleEndpointURL != "" {
		out.BundleEndpointURL = req.BundleEndpointURL
	}
	if req.Profile != "" && req.Profile != out.Profile {
		out.Profile = req.Profile
		// Parameters of the old profile do not carry over to the new one.
		out.EndpointSPIFFEID, out.CAPEM = "", ""
	}
	if req.EndpointSPIFFEID != "" {
		out.EndpointSPIFFEID = req.EndpointSPIFFEID
	}
	if req.CAPEM != "" {
		out.CAPEM = req.CAPEM
	}
	if req.AllowedIDPrefixes != nil {
		out.AllowedIDPrefixes = req.AllowedIDPrefixes
	}
	if req.ClearAllowedIDPrefixes {
		out.AllowedIDPrefixes = nil
	}
	return out
}

// DeleteRelationship ends a relationship: polling stops and the stored bundle is
// deleted with it (SPIFFE Federation 6.3).
func (b *backend) DeleteRelationship(ctx context.Context, name string) error {
	rel, err := b.n.lookupRelationship(name)
	if err != nil {
		return err
	}
	if rel.Static {
		return invalidArg("the relationship with %s is defined in the configuration file; "+
			"remove it there", rel.TrustDomain)
	}
	if err := b.n.apply(ctx, raft.DeleteRelationship{TrustDomain: rel.TrustDomain}); err != nil {
		return storeError(err)
	}
	b.n.poller.Wake()
	b.n.log.Info("federation relationship deleted", "trust_domain", rel.TrustDomain)
	return nil
}

// RefreshRelationship fetches the peer's bundle now, on the leader.
func (b *backend) RefreshRelationship(ctx context.Context, name string) (admin.Relationship, error) {
	rel, err := b.n.lookupRelationship(name)
	if err != nil {
		return admin.Relationship{}, err
	}
	if !b.n.store.IsLeader() {
		return admin.Relationship{}, admin.Errorf(admin.CodeNotLeader,
			"only the Raft leader fetches; run the command on the leader (%q)", b.n.leaderID())
	}
	before, _ := b.n.store.PeerStatus(rel.TrustDomain)
	changes, cancel := b.n.store.Subscribe()
	defer cancel()
	b.n.poller.Refresh(mustTD(rel.TrustDomain))
	for {
		if st, _ := b.n.store.PeerStatus(rel.TrustDomain); st.LastAttempt.After(before.LastAttempt) {
			return b.Relationship(ctx, rel.TrustDomain)
		}
		select {
		case <-ctx.Done():
			return admin.Relationship{}, admin.Errorf(admin.CodeUnavailable,
				"refresh of %s did not finish in time: %v", rel.TrustDomain, ctx.Err())
		case <-changes:
		}
	}
}

func (n *Node) lookupRelationship(name string) (raft.Relationship, error) {
	td, err := bundle.ParseTrustDomain(name)
	if err != nil {
		return raft.Relationship{}, invalidArg("%v", err)
	}
	rel, ok := n.store.Relationship(td.Name())
	if !ok {
		return raft.Relationship{}, admin.Errorf(admin.CodeNotFound,
			"no federation relationship with trust domain %s; list them with federation list",
			td.Name())
	}
	return rel, nil
}

func (n *Node) toAdminRelationship(rel raft.Relationship) admin.Relationship {
	out := admin.Relationship{
		TrustDomain:       rel.TrustDomain,
		BundleEndpointURL: rel.BundleEndpointURL,
		Profile:           rel.Profile,
		EndpointSPIFFEID:  rel.EndpointSPIFFEID,
		HasCA:             len(rel.CAPEM) > 0,
		AllowedIDPrefixes: rel.AllowedIDPrefixes,
		Static:            rel.Static,
		CreatedAt:         rel.CreatedAt,
		UpdatedAt:         rel.UpdatedAt,
	}
	st, _ := n.store.PeerStatus(rel.TrustDomain)
	out.Status = admin.PeerStatus{
		LastAttempt:         st.LastAttempt,
		LastSuccess:         st.LastSuccess,
		LastChange:          st.LastChange,
		NextRefresh:         st.NextRefresh,
		LastError:           st.LastError,
		ConsecutiveFailures: st.ConsecutiveFailures,
		X509Keys:            st.X509Keys,
		JWTKeys:             st.JWTKeys,
		SkippedKeys:         st.SkippedKeys,
	}
	if rec, ok := n.store.FederatedBundle(rel.TrustDomain); ok {
		out.Status.HasBundle = true
		out.Status.StoredSequence = rec.Sequence
		out.Status.BundleSource = string(rec.Source)
		if parsed, err := parseRecord(rec); err == nil && st.LastSuccess.IsZero() {
			out.Status.X509Keys, out.Status.JWTKeys = parsed.KeyCount()
		}
	}
	return out
}
