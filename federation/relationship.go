package federation

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/bundle"
)

// RelationshipSpec is a federation relationship as an operator writes it, in the
// configuration file or in an admin API request, with the content of its files.
type RelationshipSpec struct {
	TrustDomain       string
	BundleEndpointURL string
	Profile           string
	EndpointSPIFFEID  string
	// CAPEM contains extra root certificates for https_web in PEM.
	CAPEM string
	// AllowedIDPrefixes limits the IDs of the peer that are trusted; see
	// ParseIDPrefixes.
	AllowedIDPrefixes []string
	// Bootstrap is the peer's bundle to start from, in BootstrapFormat (spiffe or
	// pem, empty for spiffe). Empty means none.
	Bootstrap       string
	BootstrapFormat string
}

// CheckedRelationship is a RelationshipSpec that CheckRelationship accepted,
// with its values parsed.
type CheckedRelationship struct {
	TrustDomain spiffeid.TrustDomain
	Profile     Profile
	// EndpointID is zero under https_web.
	EndpointID spiffeid.ID
	// AllowedIDPrefixes are the prefixes without duplicates, nil for none.
	AllowedIDPrefixes []string
	// CACerts is nil without CAPEM.
	CACerts []*x509.Certificate
	// Bootstrap is nil without a bootstrap bundle.
	Bootstrap *bundle.Bundle
}

// Fields of a RelationshipSpec as FieldError names them. They are the keys of a
// static relationship in the configuration file, except FieldCA and
// FieldBootstrap, which hold file content there.
const (
	FieldTrustDomain       = "trust_domain"
	FieldEndpointURL       = "bundle_endpoint_url"
	FieldProfile           = "profile"
	FieldEndpointID        = "endpoint_spiffe_id"
	FieldCA                = "ca"
	FieldAllowedIDPrefixes = "allowed_id_prefixes"
	FieldBootstrap         = "bootstrap"
)

// FieldError is an error about one field of a RelationshipSpec. Its message is
// the message of Err.
type FieldError struct {
	// Field is one of the Field constants.
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// CheckRelationship checks every part of a relationship that does not depend on
// stored state. These are the trust domain and IDs (SPIFFE-ID 2), the URL (SPIFFE
// Federation 5.2.1.1 and 5.2.2.1), an explicit profile (5.1 and 7.2) and the
// parameters of the profile (5.2.1.2 and 5.2.2.2). The CA certificates, the
// bootstrap bundle and the ID prefixes are checked too. local is the node's own
// trust domain, which a relationship cannot name.
//
// The node runs it on every relationship it stores, and the configuration runs
// it on every static relationship at load, so that a relationship the
// configuration accepts is never rejected later. The error is a *FieldError for
// the first failing field. The caller still checks what depends on stored
// bundles: that the endpoint's X509-SVID can be authenticated.
func CheckRelationship(local spiffeid.TrustDomain, spec RelationshipSpec) (
	*CheckedRelationship, error) {
	fail := func(field string, err error) (*CheckedRelationship, error) {
		return nil, &FieldError{Field: field, Err: err}
	}
	td, err := bundle.ParseTrustDomain(spec.TrustDomain)
	if err != nil {
		return fail(FieldTrustDomain, err)
	}
	if td == local {
		return fail(FieldTrustDomain, fmt.Errorf("trust domain %s is this node's own "+
			"trust domain; a relationship names another trust domain", td.Name()))
	}
	if _, err := ValidateEndpointURL(spec.BundleEndpointURL); err != nil {
		return fail(FieldEndpointURL, err)
	}
	if spec.Profile == "" {
		return fail(FieldProfile, fmt.Errorf("profile is missing for %s: set %s or %s; "+
			"bundlex never guesses the profile", td.Name(), ProfileHTTPSSPIFFE, ProfileHTTPSWeb))
	}
	profile, err := ParseProfile(spec.Profile)
	if err != nil {
		return fail(FieldProfile, err)
	}
	out := &CheckedRelationship{TrustDomain: td, Profile: profile}
	if spec.Bootstrap != "" {
		if out.Bootstrap, err = parseBootstrap(td, spec.Bootstrap, spec.BootstrapFormat); err != nil {
			return fail(FieldBootstrap, err)
		}
	}
	if spec.CAPEM != "" {
		if profile != ProfileHTTPSWeb {
			return fail(FieldCA, fmt.Errorf("a CA file applies to %s only; %s uses %s",
				ProfileHTTPSWeb, td.Name(), profile))
		}
		if out.CACerts, err = ParseCAPEM(spec.CAPEM); err != nil {
			return fail(FieldCA, fmt.Errorf("CA file for %s: %w", td.Name(), err))
		}
	}
	if out.AllowedIDPrefixes, err = ParseIDPrefixes(td, spec.AllowedIDPrefixes); err != nil {
		return fail(FieldAllowedIDPrefixes, err)
	}
	if profile == ProfileHTTPSWeb {
		if spec.EndpointSPIFFEID != "" {
			return fail(FieldEndpointID, fmt.Errorf("endpoint SPIFFE ID %q applies to %s "+
				"only; %s takes no parameters besides URL and trust domain (SPIFFE "+
				"Federation 5.2.1.2)", spec.EndpointSPIFFEID, ProfileHTTPSSPIFFE, ProfileHTTPSWeb))
		}
		return out, nil
	}
	if spec.EndpointSPIFFEID == "" {
		return fail(FieldEndpointID, fmt.Errorf("endpoint SPIFFE ID is missing for %s: %s "+
			"needs the ID the endpoint presents, such as spiffe://%s/spire/server", td.Name(),
			ProfileHTTPSSPIFFE, td.Name()))
	}
	if out.EndpointID, err = bundle.ParseID(spec.EndpointSPIFFEID); err != nil {
		return fail(FieldEndpointID, err)
	}
	return out, nil
}

func parseBootstrap(td spiffeid.TrustDomain, data, formatName string) (*bundle.Bundle, error) {
	format, err := bundle.ParseFormat(formatName)
	if err != nil {
		return nil, err
	}
	b, _, err := bundle.Decode(td, []byte(data), format)
	if err != nil {
		return nil, fmt.Errorf("bootstrap bundle: %w", err)
	}
	return b, nil
}

// ParseCAPEM parses the extra root certificates of an https_web relationship.
// It accepts only CERTIFICATE blocks, at least one, so that a private key passed
// by mistake never reaches the replicated state.
func ParseCAPEM(data string) ([]*x509.Certificate, error) {
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
