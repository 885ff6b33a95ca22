package node

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/federation"
	"github.com/bundlex/bundlex/internal/admin"
	"github.com/bundlex/bundlex/raft"
)

// relationshipInput is a relationship request after parsing, before it is stored.
type relationshipInput struct {
	rel       raft.Relationship
	bootstrap *bundle.Bundle
}

// checkRelationship validates a relationship as an operator gave it through the
// admin API.
func (n *Node) checkRelationship(req admin.RelationshipRequest) (*relationshipInput, error) {
	return n.checkSpec(federation.RelationshipSpec{
		TrustDomain:       req.TrustDomain,
		BundleEndpointURL: req.BundleEndpointURL,
		Profile:           req.Profile,
		EndpointSPIFFEID:  req.EndpointSPIFFEID,
		CAPEM:             req.CAPEM,
		AllowedIDPrefixes: req.AllowedIDPrefixes,
		Bootstrap:         req.Bootstrap,
		BootstrapFormat:   req.BootstrapFormat,
	})
}

// checkSpec validates a relationship with federation.CheckRelationship, which
// the configuration also runs on each static relationship at load. Then it checks
// what depends on the stored bundles: that an https_spiffe endpoint can be
// authenticated.
func (n *Node) checkSpec(spec federation.RelationshipSpec) (*relationshipInput, error) {
	checked, err := federation.CheckRelationship(n.td, spec)
	if err != nil {
		return nil, invalidArg("%v", err)
	}
	in := &relationshipInput{
		rel: raft.Relationship{
			TrustDomain:       checked.TrustDomain.Name(),
			BundleEndpointURL: spec.BundleEndpointURL,
			Profile:           string(checked.Profile),
			AllowedIDPrefixes: checked.AllowedIDPrefixes,
		},
		bootstrap: checked.Bootstrap,
	}
	if spec.CAPEM != "" {
		in.rel.CAPEM = []byte(spec.CAPEM)
	}
	if checked.Profile == federation.ProfileHTTPSWeb {
		return in, nil
	}
	in.rel.EndpointSPIFFEID = checked.EndpointID.String()
	return in, n.checkSPIFFEEndpoint(in, checked.TrustDomain, checked.EndpointID)
}

// checkSPIFFEEndpoint checks that the endpoint ID of an https_spiffe relationship
// can be authenticated: a self-serving endpoint needs a bootstrap bundle (SPIFFE
// Federation 5.2.2.2), and an endpoint in another trust domain needs that trust
// domain's bundle to be known already.
func (n *Node) checkSPIFFEEndpoint(in *relationshipInput, td spiffeid.TrustDomain,
	id spiffeid.ID) error {
	endpointTD := id.TrustDomain()
	if endpointTD == td {
		_, stored := n.store.FederatedBundle(td.Name())
		if in.bootstrap == nil && !stored {
			return invalidArg("endpoint %s serves its own trust domain %s, so a bootstrap "+
				"bundle is needed to authenticate it the first time: pass --bundle-path with "+
				"the bundle of %s (SPIFFE format, or PEM)", id, td.Name(), td.Name())
		}
		return nil
	}
	if endpointTD == n.td {
		return nil
	}
	if _, ok := n.store.FederatedBundle(endpointTD.Name()); !ok {
		return invalidArg("endpoint SPIFFE ID %s is outside trust domain %s, and no bundle of "+
			"%s is known to authenticate it: use an endpoint ID in %s with a bootstrap bundle, "+
			"or federate with %s first", id, td.Name(), endpointTD.Name(), td.Name(),
			endpointTD.Name())
	}
	return nil
}

// parseBundleInput parses a bundle that an operator sent. label names it in errors.
func parseBundleInput(label string, td spiffeid.TrustDomain, data, formatName string) (*bundle.Bundle, error) {
	format, err := bundle.ParseFormat(formatName)
	if err != nil {
		return nil, invalidArg("%v", err)
	}
	b, _, err := bundle.Decode(td, []byte(data), format)
	if err != nil {
		return nil, invalidArg("%s: %v", label, err)
	}
	return b, nil
}

// parseCAPEM parses the CA certificates of an https_web relationship with the
// same function that checked them before they were stored.
func parseCAPEM(data string) ([]*x509.Certificate, error) {
	return federation.ParseCAPEM(data)
}

// syncStaticRelationships makes the stored static relationships match the
// configuration file: creates the new ones, updates the changed ones and deletes
// the ones that were removed from the file. A relationship that fails its checks
// is logged and returned in rejected, and the others are still applied, so
// that one of them never keeps the leader from publishing the local bundle. The
// error is a store error, which fails the whole sync.
func (n *Node) syncStaticRelationships(ctx context.Context) (rejected []string, err error) {
	names := slices.Sorted(maps.Keys(n.cfg.Federation.TrustDomains))
	rejected, err = n.applyStatic(ctx, names)
	if err != nil {
		return nil, err
	}
	wanted := map[string]bool{}
	for _, name := range names {
		wanted[name] = true
	}
	for _, rel := range n.store.Relationships() {
		if rel.Static && !wanted[rel.TrustDomain] {
			n.log.Info("deleting static relationship removed from the configuration",
				"trust_domain", rel.TrustDomain)
			err := n.store.Apply(ctx, raft.DeleteRelationship{TrustDomain: rel.TrustDomain})
			if err != nil && !errors.Is(err, raft.ErrNotFound) {
				return nil, err
			}
		}
	}
	return rejected, nil
}

// applyStatic creates or updates the static relationships of names and returns
// the names of those that failed their checks, each logged with its reason.
func (n *Node) applyStatic(ctx context.Context, names []string) (rejected []string, err error) {
	for _, name := range names {
		in, reason := n.checkStatic(name)
		if reason != nil {
			n.log.Error("static relationship rejected; the node serves the other relationships "+
				"and the local bundle without it and retries it", "trust_domain", name,
				"error", reason)
			rejected = append(rejected, name)
			continue
		}
		if err := n.putStatic(ctx, in); err != nil {
			return nil, err
		}
	}
	return rejected, nil
}

// checkStatic reads the files of the static relationship name and checks it as
// the admin API checks a relationship.
func (n *Node) checkStatic(name string) (*relationshipInput, error) {
	spec, err := n.cfg.Federation.TrustDomains[name].Spec(name)
	if err != nil {
		return nil, err
	}
	in, err := n.checkSpec(spec)
	if err != nil {
		return nil, fmt.Errorf("node: federation.trust_domains.%s: %w", name, err)
	}
	in.rel.Static = true
	return in, nil
}

// retryStaticRelationships applies the rejected static relationships again,
// with a delay from retryDelay that doubles up to maxStaticRetryDelay, until
// all of them are stored or ctx ends. A relationship can start to pass when the
// bundle that authenticates its endpoint becomes known or its file is fixed.
func (n *Node) retryStaticRelationships(ctx context.Context, rejected []string) {
	delay := retryDelay
	for len(rejected) > 0 && sleep(ctx, delay) {
		still, err := n.applyStatic(ctx, rejected)
		switch {
		case err == nil:
			rejected = still
		case ctx.Err() == nil:
			n.log.Error("applying static relationships failed", "error", err,
				"trust_domains", rejected)
		}
		delay = min(2*delay, maxStaticRetryDelay)
	}
}

// maxStaticRetryDelay is the longest pause between two attempts to apply a
// rejected static relationship.
const maxStaticRetryDelay = time.Minute

func (n *Node) putStatic(ctx context.Context, in *relationshipInput) error {
	stored, ok := n.store.Relationship(in.rel.TrustDomain)
	if !ok {
		n.log.Info("creating static relationship", "trust_domain", in.rel.TrustDomain)
		return n.createRelationship(ctx, in)
	}
	in.rel.CreatedAt = stored.CreatedAt
	in.rel.UpdatedAt = stored.UpdatedAt
	if sameRelationship(stored, in.rel) {
		return nil
	}
	n.log.Info("updating static relationship", "trust_domain", in.rel.TrustDomain)
	in.rel.UpdatedAt = n.now().UTC()
	return n.store.Apply(ctx, raft.UpdateRelationship{Relationship: in.rel})
}

func sameRelationship(a, b raft.Relationship) bool {
	return a.BundleEndpointURL == b.BundleEndpointURL && a.Profile == b.Profile &&
		a.EndpointSPIFFEID == b.EndpointSPIFFEID && string(a.CAPEM) == string(b.CAPEM) &&
		a.Static == b.Static && strings.Join(a.AllowedIDPrefixes, "\n") ==
		strings.Join(b.AllowedIDPrefixes, "\n")
}

// createRelationship stores a new relationship with its bootstrap bundle.
func (n *Node) createRelationship(ctx context.Context, in *relationshipInput) error {
	now := n.now().UTC()
	in.rel.CreatedAt, in.rel.UpdatedAt = now, now
	cmd := raft.CreateRelationship{Relationship: in.rel}
	if in.bootstrap != nil {
		rec, err := newRecord(in.bootstrap, raft.SourceBootstrap, now)
		if err != nil {
			return err
		}
		cmd.Bootstrap = &rec
	}
	if err := n.apply(ctx, cmd); err != nil {
		return err
	}
	n.poller.Wake()
	return nil
}

func invalidArg(format string, args ...any) error {
	return admin.Errorf(admin.CodeInvalidArgument, format, args...)
}
