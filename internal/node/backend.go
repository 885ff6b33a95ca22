package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/internal/admin"
	"github.com/bundlex/bundlex/raft"
)

// backend implements the admin API on top of the node.
type backend struct{ n *Node }

func (b *backend) Status(context.Context) admin.Status {
	n := b.n
	st := admin.Status{
		NodeName:     n.cfg.NodeName,
		TrustDomain:  n.td.Name(),
		Version:      Version,
		RaftState:    n.store.State().String(),
		Leader:       n.leaderID(),
		AppliedIndex: n.store.AppliedIndex(),
		LastContact:  n.store.LastContact(),
		EndpointURL:  n.EndpointURL(),
	}
	if err := n.Ready(); err != nil {
		st.ReadyError = err.Error()
	} else {
		st.Ready = true
	}
	return st
}

func (b *backend) LocalBundle(context.Context) (admin.Bundle, error) {
	rec, ok := b.n.store.LocalBundle()
	if !ok {
		return admin.Bundle{}, admin.Errorf(admin.CodeUnavailable,
			"the local bundle of %s is not published yet; wait for a Raft leader", b.n.td.Name())
	}
	return toAdminBundle(rec)
}

func (b *backend) Bundles(context.Context) ([]admin.Bundle, error) {
	out := []admin.Bundle{}
	for _, rec := range b.n.store.FederatedBundles() {
		ab, err := toAdminBundle(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, ab)
	}
	return out, nil
}

func (b *backend) Bundle(_ context.Context, name string) (admin.Bundle, error) {
	td, err := bundle.ParseTrustDomain(name)
	if err != nil {
		return admin.Bundle{}, invalidArg("%v", err)
	}
	rec, ok := b.n.store.FederatedBundle(td.Name())
	if !ok {
		return admin.Bundle{}, admin.Errorf(admin.CodeNotFound,
			"no bundle is stored for trust domain %s", td.Name())
	}
	return toAdminBundle(rec)
}

// SetBundle stores an operator's bundle for a foreign trust domain (SPIFFE
// Federation 4.2: the override is kept until the next refresh).
func (b *backend) SetBundle(ctx context.Context, name string, req admin.SetBundleRequest) (admin.Bundle, error) {
	td, err := bundle.ParseTrustDomain(name)
	if err != nil {
		return admin.Bundle{}, invalidArg("%v", err)
	}
	if td == b.n.td {
		return admin.Bundle{}, invalidArg("%s is this node's own trust domain, whose bundle "+
			"comes from its authority; use bundle set for other trust domains", td.Name())
	}
	parsed, err := parseBundleInput("bundle file", td, req.Data, req.Format)
	if err != nil {
		return admin.Bundle{}, err
	}
	rec, err := newRecord(parsed, raft.SourceOperator, b.n.now())
	if err != nil {
		return admin.Bundle{}, err
	}
	if err := b.n.apply(ctx, raft.PutFederatedBundle{Record: rec, Override: true}); err != nil {
		return admin.Bundle{}, storeError(err)
	}
	b.n.log.Info("federated bundle set by operator", "trust_domain", td.Name(),
		"sequence", parsed.Sequence)
	return b.Bundle(ctx, td.Name())
}

func (b *backend) DeleteBundle(ctx context.Context, name string) error {
	td, err := bundle.ParseTrustDomain(name)
	if err != nil {
		return invalidArg("%v", err)
	}
	if _, ok := b.n.store.Relationship(td.Name()); ok {
		return admin.Errorf(admin.CodeConflict, "the bundle of %s belongs to a federation "+
			"relationship; delete the relationship instead (federation delete --trust-domain %s)",
			td.Name(), td.Name())
	}
	if err := b.n.apply(ctx, raft.DeleteFederatedBundle{TrustDomain: td.Name()}); err != nil {
		return storeError(err)
	}
	b.n.log.Info("federated bundle deleted by operator", "trust_domain", td.Name())
	return nil
}

func (b *backend) RotateAuthority(ctx context.Context) (admin.Bundle, error) {
	if b.n.builtin == nil {
		return admin.Bundle{}, invalidArg("authority.type is file: rotate the keys in the CA " +
			"that writes authority.bundle_path")
	}
	// Every node rotates its own keys; the leader then publishes the union.
	reply := make(chan error, 1)
	select {
	case b.n.rotateCh <- reply:
	case <-ctx.Done():
		return admin.Bundle{}, ctx.Err()
	}
	select {
	case err := <-reply:
		if err != nil {
			return admin.Bundle{}, storeError(err)
		}
	case <-ctx.Done():
		return admin.Bundle{}, ctx.Err()
	}
	return b.LocalBundle(ctx)
}

func toAdminBundle(rec raft.BundleRecord) (admin.Bundle, error) {
	parsed, err := parseRecord(rec)
	if err != nil {
		return admin.Bundle{}, err
	}
	x509Keys, jwtKeys := parsed.KeyCount()
	return admin.Bundle{
		TrustDomain:        rec.TrustDomain,
		Sequence:           rec.Sequence,
		HasSequence:        rec.HasSequence,
		RefreshHintSeconds: int64(parsed.RefreshHint / time.Second),
		X509Keys:           x509Keys,
		JWTKeys:            jwtKeys,
		Source:             string(rec.Source),
		UpdatedAt:          rec.UpdatedAt,
		Document:           rec.Document,
		PEM:                string(bundle.MarshalPEM(parsed)),
	}, nil
}

// storeError turns a store error into an admin API error with the same message.
func storeError(err error) error {
	var apiErr *admin.APIError
	switch {
	case errors.As(err, &apiErr):
		return err
	case errors.Is(err, raft.ErrNotFound):
		return admin.Errorf(admin.CodeNotFound, "%v", err)
	case errors.Is(err, raft.ErrExists):
		return admin.Errorf(admin.CodeAlreadyExists, "%v", err)
	case errors.Is(err, raft.ErrConflict), errors.Is(err, raft.ErrSequenceRollback):
		return admin.Errorf(admin.CodeConflict, "%v", err)
	case errors.Is(err, raft.ErrNotLeader):
		return admin.Errorf(admin.CodeNotLeader, "%v", err)
	case errors.Is(err, raft.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return admin.Errorf(admin.CodeUnavailable, "%v", err)
	}
	return fmt.Errorf("node: %w", err)
}
