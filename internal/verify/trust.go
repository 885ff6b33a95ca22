package verify

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/bundlex/bundlex/bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Trust is a consistent view of the bundles a node holds. A TrustSource hands out
// a new *Trust when anything in it changes and never modifies one it has handed
// out, nor the bundles in it: the Verifier caches what it derives from each
// *Trust and each *bundle.Bundle by pointer.
type Trust struct {
	// Local is the bundle of the node's own trust domain, or nil before the node
	// has one.
	Local *bundle.Bundle
	// Federated holds the bundle of every federated trust domain. A nil value
	// marks a relationship whose bundle has not been fetched yet.
	Federated map[spiffeid.TrustDomain]*bundle.Bundle
	// AllowedIDPrefixes restricts the SPIFFE IDs a federated trust domain may
	// claim, for example "spiffe://org-a.test/agents/". A missing or empty list
	// allows the whole trust domain. Entries for the local trust domain are
	// ignored.
	AllowedIDPrefixes map[spiffeid.TrustDomain][]string
}

// TrustSource supplies the current Trust. Trust is called once per verification,
// so it must be cheap, and it may return nil when the node holds no bundle.
type TrustSource interface {
	Trust() *Trust
}

// TrustFunc adapts a function to TrustSource.
type TrustFunc func() *Trust

// Trust returns f().
func (f TrustFunc) Trust() *Trust { return f() }

// bundleKeys is the key material of one bundle, indexed for verification.
type bundleKeys struct {
	jwtKeys map[string]crypto.PublicKey
	// jwtKeyIDs keeps the bundle's order, for tokens without kid.
	jwtKeyIDs []string
	roots     *x509.CertPool
}

func indexBundle(b *bundle.Bundle) *bundleKeys {
	keys := &bundleKeys{jwtKeys: make(map[string]crypto.PublicKey, len(b.JWTAuthorities))}
	for _, authority := range b.JWTAuthorities {
		if _, seen := keys.jwtKeys[authority.KeyID]; seen {
			continue
		}
		keys.jwtKeys[authority.KeyID] = authority.PublicKey
		keys.jwtKeyIDs = append(keys.jwtKeyIDs, authority.KeyID)
	}
	if len(b.X509Authorities) > 0 {
		keys.roots = x509.NewCertPool()
		for _, cert := range b.X509Authorities {
			keys.roots.AddCert(cert)
		}
	}
	return keys
}

// domainTrust is the Verifier's view of one trust domain: its keys and its ID
// policy.
type domainTrust struct {
	td    spiffeid.TrustDomain
	local bool
	// keys is nil while a federated trust domain has no usable bundle.
	keys *bundleKeys
	// foreignBundle is the trust domain named by a bundle stored under td for
	// another trust domain. Such a bundle is never used (SPIFFE Federation 4.2:
	// bundles of different trust domains are never merged).
	foreignBundle spiffeid.TrustDomain
	// prefixes are the allowed ID prefixes as configured; nil allows every ID.
	prefixes []string
	// policyErr is set when a configured prefix is invalid. Every SPIFFE ID of the
	// trust domain is then rejected, because an unusable restriction must not
	// widen into no restriction.
	policyErr error
}

// compiledTrust is a Trust indexed for verification, built once per *Trust.
type compiledTrust struct {
	source  *Trust
	localTD spiffeid.TrustDomain
	domains map[spiffeid.TrustDomain]*domainTrust
	// byBundle lets the next compiledTrust reuse the index of unchanged bundles.
	byBundle map[*bundle.Bundle]*bundleKeys
}

// compileTrust indexes t, reusing the bundle indexes of previous where the
// bundle pointer is unchanged. t may be nil.
func compileTrust(t *Trust, previous *compiledTrust) *compiledTrust {
	out := &compiledTrust{
		source:   t,
		domains:  map[spiffeid.TrustDomain]*domainTrust{},
		byBundle: map[*bundle.Bundle]*bundleKeys{},
	}
	if t == nil {
		return out
	}
	index := func(b *bundle.Bundle) *bundleKeys {
		if keys, ok := out.byBundle[b]; ok {
			return keys
		}
		keys, ok := previous.bundleKeys(b)
		if !ok {
			keys = indexBundle(b)
		}
		out.byBundle[b] = keys
		return keys
	}
	for td, b := range t.Federated {
		domain := &domainTrust{td: td}
		switch {
		case b == nil:
		case b.TrustDomain != td:
			domain.foreignBundle = b.TrustDomain
		default:
			domain.keys = index(b)
		}
		domain.prefixes, domain.policyErr = compilePrefixes(td, t.AllowedIDPrefixes[td])
		out.domains[td] = domain
	}
	if t.Local != nil {
		// The local trust domain wins over a federated entry of the same name and
		// has no prefix restriction.
		out.localTD = t.Local.TrustDomain
		out.domains[out.localTD] = &domainTrust{td: out.localTD, local: true,
			keys: index(t.Local)}
	}
	return out
}

func (c *compiledTrust) bundleKeys(b *bundle.Bundle) (*bundleKeys, bool) {
	if c == nil {
		return nil, false
	}
	keys, ok := c.byBundle[b]
	return keys, ok
}

// domain returns the trust of td, or an unknown_trust_domain or no_bundle error.
func (c *compiledTrust) domain(td spiffeid.TrustDomain, claimedID string) (*domainTrust,
	*Error) {
	domain, ok := c.domains[td]
	if !ok {
		local := "none yet"
		if !c.localTD.IsZero() {
			local = fmt.Sprintf("%q", c.localTD.Name())
		}
		return nil, &Error{Code: CodeUnknownTrustDomain, ClaimedID: claimedID,
			Message: fmt.Sprintf("trust domain %q of %s is neither the local trust domain "+
				"(%s) nor federated; create a federation relationship to accept its SVIDs",
				td.Name(), claimedID, local)}
	}
	if domain.keys == nil && !domain.foreignBundle.IsZero() {
		return nil, &Error{Code: CodeNoBundle, ClaimedID: claimedID,
			Message: fmt.Sprintf("the bundle stored for trust domain %q belongs to trust "+
				"domain %q, so it is not used; store the bundle of %q under its own name",
				td.Name(), domain.foreignBundle.Name(), td.Name())}
	}
	if domain.keys == nil {
		return nil, &Error{Code: CodeNoBundle, ClaimedID: claimedID,
			Message: fmt.Sprintf("no bundle of federated trust domain %q has been fetched "+
				"yet, so every SVID of it is rejected; check the relationship's status",
				td.Name())}
	}
	return domain, nil
}

// compilePrefixes checks that every prefix is a SPIFFE ID of td, optionally with
// a trailing "/".
func compilePrefixes(td spiffeid.TrustDomain, prefixes []string) ([]string, error) {
	if len(prefixes) == 0 {
		return nil, nil
	}
	for _, prefix := range prefixes {
		id, err := bundle.ParseID(strings.TrimSuffix(prefix, "/"))
		if err != nil {
			return nil, fmt.Errorf("allowed ID prefix %q of trust domain %q is invalid (%v)",
				prefix, td.Name(), err)
		}
		if id.TrustDomain() != td {
			return nil, fmt.Errorf("allowed ID prefix %q is not in trust domain %q", prefix,
				td.Name())
		}
	}
	return append([]string(nil), prefixes...), nil
}

// checkAllowed applies the peer policy to id, a SPIFFE ID of domain.
func (d *domainTrust) checkAllowed(id string) *Error {
	if d.local {
		return nil
	}
	if d.policyErr != nil {
		return &Error{Code: CodeIDNotAllowed, ClaimedID: id,
			Message: fmt.Sprintf("%s is rejected because the %v; fix the prefixes of the "+
				"relationship", id, d.policyErr)}
	}
	if d.prefixes == nil {
		return nil
	}
	for _, prefix := range d.prefixes {
		if prefixAllows(prefix, id) {
			return nil
		}
	}
	return &Error{Code: CodeIDNotAllowed, ClaimedID: id,
		Message: fmt.Sprintf("%s is outside the ID prefixes allowed for trust domain %q "+
			"(%s)", id, d.td.Name(), strings.Join(d.prefixes, ", "))}
}

// prefixAllows matches on whole path segments: "spiffe://td/agents" allows
// "spiffe://td/agents" and "spiffe://td/agents/x" but not "spiffe://td/agentsX",
// while "spiffe://td/agents/" allows only IDs below "agents".
func prefixAllows(prefix, id string) bool {
	if !strings.HasPrefix(id, prefix) {
		return false
	}
	if strings.HasSuffix(prefix, "/") || len(id) == len(prefix) {
		return true
	}
	return id[len(prefix)] == '/'
}
