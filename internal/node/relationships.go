package node

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

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

// checkRelationship validates a relationship as an operator gave it: trust domain
// and IDs (SPIFFE-ID 2), URL (SPIFFE Federation 5.2.x.1), an explicit profile
// (SPIFFE Federation 5.1, 7.2) and the trust needed to authenticate an
// https_spiffe endpoint (SPIFFE Federation 5.2.2.2).
func (n *Node) checkRelationship(req admin.RelationshipRequest) (*relationshipInput, error) {
	td, err := bundle.ParseTrustDomain(req.TrustDomain)
	if err != nil {
		return nil, invalidArg("%v", err)
	}
	if td == n.td {
		return nil, invalidArg("trust domain %s is this node's own trust domain; "+
			"a relationship names another trust domain", td.Name())
	}
	if _, err := federation.ValidateEndpointURL(req.BundleEndpointURL); err != nil {
		return nil, invalidArg("%v", err)
	}
	if req.Profile == "" {
		return nil, invalidArg("profile is missing for %s: set https_spiffe or https_web; "+
			"bundlex never guesses the profile", td.Name())
	}
	profile, err := federation.ParseProfile(req.Profile)
	if err != nil {
		return nil, invalidArg("%v", err)
	}
	in := &relationshipInput{rel: raft.Relationship{
		TrustDomain:       td.Name(),
		BundleEndpointURL: req.BundleEndpointURL,
		Profile:           string(profile),
		AllowedIDPrefixes: req.AllowedIDPrefixes,
	}}
	if req.Bootstrap != "" {
		if in.bootstrap, err = parseBootstrap(td, req.Bootstrap, req.BootstrapFormat); err != nil {
			return nil, err
		}
	}
	if req.CAPEM != "" {
		if profile != federation.ProfileHTTPSWeb {
			return nil, invalidArg("a CA file applies to https_web only; %s uses %s", td.Name(), profile)
		}
		if _, err := parseCAPEM(req.CAPEM); err != nil {
			return nil, invalidArg("CA file for %s: %v", td.Name(), err)
		}
		in.rel.CAPEM = []byte(req.CAPEM)
	}
	if err := checkPrefixes(td, req.AllowedIDPrefixes); err != nil {
		return nil, err
	}
	if profile == federation.ProfileHTTPSWeb {
		if req.EndpointSPIFFEID != "" {
			return nil, invalidArg("endpoint SPIFFE ID %q applies to https_spiffe only; "+
				"https_web takes no parameters besides URL and trust domain (SPIFFE Federation "+
				"5.2.1.2)", req.EndpointSPIFFEID)
		}
		return in, nil
	}
	return in, n.checkSPIFFEEndpoint(in, td, req.EndpointSPIFFEID)
}

// checkSPIFFEEndpoint checks that the endpoint ID of an https_spiffe relationship
// can be authenticated: a self-serving endpoint needs a bootstrap bundle (SPIFFE
// Federation 5.2.2.2), and an endpoint in another trust domain needs that trust
// domain's bundle to be known already.
func (n *Node) checkSPIFFEEndpoint(in *relationshipInput, td spiffeid.TrustDomain, raw string) error {
	if raw == "" {
		return invalidArg("endpoint SPIFFE ID is missing for %s: https_spiffe needs the ID the "+
			"endpoint presents, such as spiffe://%s/spire/server", td.Name(), td.Name())
	}
	id, err := bundle.ParseID(raw)
	if err != nil {
		return invalidArg("%v", err)
	}
	in.rel.EndpointSPIFFEID = id.String()
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

func parseBootstrap(td spiffeid.TrustDomain, data, formatName string) (*bundle.Bundle, error) {
	return parseBundleInput("bootstrap bundle", td, data, formatName)
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

func parseCAPEM(data string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(data)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q is not a CERTIFICATE", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// checkPrefixes checks that each allowed ID prefix names a path in td.
func checkPrefixes(td spiffeid.TrustDomain, prefixes []string) error {
	base := td.IDString()
	for _, p := range prefixes {
		if p != base && !strings.HasPrefix(p, base+"/") {
			return invalidArg("allowed ID prefix %q is not in trust domain %s: "+
				"start it with %s/", p, td.Name(), base)
		}
	}
	return nil
}

// syncStaticRelationships makes the stored static relationships match the
// configuration file: creates the new ones, updates the changed ones and deletes
// the ones that were removed from the file.
func (n *Node) syncStaticRelationships(ctx context.Context) error {
	wanted := map[string]bool{}
	for name, rel := range n.cfg.Federation.TrustDomains {
		req := admin.RelationshipRequest{
			TrustDomain:       name,
			BundleEndpointURL: rel.BundleEndpointURL,
			Profile:           rel.Profile,
			EndpointSPIFFEID:  rel.EndpointSPIFFEID,
			BootstrapFormat:   rel.BundleFormat,
		}
		for _, prefix := range strings.Split(rel.AllowedIDPrefixes, ",") {
			if prefix = strings.TrimSpace(prefix); prefix != "" {
				req.AllowedIDPrefixes = append(req.AllowedIDPrefixes, prefix)
			}
		}
		if err := readInto(&req.Bootstrap, rel.BundlePath, "bundle_path", name); err != nil {
			return err
		}
		if err := readInto(&req.CAPEM, rel.CAFile, "ca_file", name); err != nil {
			return err
		}
		in, err := n.checkRelationship(req)
		if err != nil {
			return fmt.Errorf("node: federation.trust_domains.%s: %w", name, err)
		}
		in.rel.Static = true
		wanted[in.rel.TrustDomain] = true
		if err := n.putStatic(ctx, in); err != nil {
			return err
		}
	}
	for _, rel := range n.store.Relationships() {
		if rel.Static && !wanted[rel.TrustDomain] {
			n.log.Info("deleting static relationship removed from the configuration",
				"trust_domain", rel.TrustDomain)
			err := n.store.Apply(ctx, raft.DeleteRelationship{TrustDomain: rel.TrustDomain})
			if err != nil && !errors.Is(err, raft.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

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

func readInto(dst *string, path, key, td string) error {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("node: federation.trust_domains.%s.%s: %w", td, key, err)
	}
	*dst = string(data)
	return nil
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
