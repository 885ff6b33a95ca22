package federation

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Profile is the bundle endpoint profile of a relationship (SPIFFE Federation 5).
type Profile string

const (
	// ProfileHTTPSWeb authenticates the endpoint with Web PKI (SPIFFE Federation 5.2.1).
	ProfileHTTPSWeb Profile = "https_web"
	// ProfileHTTPSSPIFFE authenticates the endpoint with its X509-SVID (SPIFFE
	// Federation 5.2.2).
	ProfileHTTPSSPIFFE Profile = "https_spiffe"
)

// ParseProfile returns the profile named s. Names are case-sensitive, as in the
// SPIFFE Federation specification and SPIRE's configuration.
func ParseProfile(s string) (Profile, error) {
	switch p := Profile(s); p {
	case ProfileHTTPSWeb, ProfileHTTPSSPIFFE:
		return p, nil
	}
	return "", fmt.Errorf("federation: %w: unknown bundle endpoint profile %q; use %q or %q",
		ErrInvalidConfig, s, ProfileHTTPSWeb, ProfileHTTPSSPIFFE)
}

// Peer is one federation relationship as Fetch needs it. SPIFFE Federation 5.1 and
// 7.2: the trust domain, URL and profile are always configured explicitly, never
// derived from each other.
type Peer struct {
	// TrustDomain is the trust domain whose bundle the endpoint serves.
	TrustDomain spiffeid.TrustDomain
	// URL is the bundle endpoint URL, checked with ValidateEndpointURL.
	URL string
	// Profile selects how the endpoint is authenticated.
	Profile Profile

	// EndpointID is the SPIFFE ID the endpoint's X509-SVID must carry. Only used
	// with ProfileHTTPSSPIFFE, where it is required.
	EndpointID spiffeid.ID
	// TrustBundle contains the X.509 authorities that verify the endpoint's
	// X509-SVID. Only the bundle of EndpointID's trust domain is used (SPIFFE
	// Federation 5.2.2). Only used with ProfileHTTPSSPIFFE, where it is required.
	TrustBundle x509bundle.Source

	// RootCAs are the Web PKI roots. Nil means the system roots. Only used with
	// ProfileHTTPSWeb.
	RootCAs *x509.CertPool
	// ExtraRootCAs are added to RootCAs, or to the system roots when RootCAs is
	// nil. Only used with ProfileHTTPSWeb.
	ExtraRootCAs []*x509.Certificate
}

// validate checks the peer and returns its parsed endpoint URL.
func (p Peer) validate() (*url.URL, error) {
	if p.TrustDomain.IsZero() {
		return nil, withKinds(fmt.Errorf("trust domain is missing; set the "+
			"relationship's trust domain"), ErrInvalidConfig)
	}
	u, err := validateEndpointURL(p.URL)
	if err != nil {
		return nil, withKinds(err, ErrInvalidConfig)
	}
	switch p.Profile {
	case ProfileHTTPSWeb:
	case ProfileHTTPSSPIFFE:
		if p.EndpointID.IsZero() {
			return nil, withKinds(fmt.Errorf("profile %s requires the endpoint SPIFFE ID; "+
				"set it in the relationship", p.Profile), ErrInvalidConfig)
		}
		if p.TrustBundle == nil {
			return nil, withKinds(fmt.Errorf("profile %s requires a trust bundle for %s "+
				"to authenticate the endpoint", p.Profile, p.EndpointID.TrustDomain()),
				ErrInvalidConfig)
		}
	default:
		return nil, withKinds(fmt.Errorf("unknown bundle endpoint profile %q; use %q or %q",
			p.Profile, ProfileHTTPSWeb, ProfileHTTPSSPIFFE), ErrInvalidConfig)
	}
	return u, nil
}

// ValidateEndpointURL parses raw and checks that it can be a bundle endpoint URL:
// scheme https, a host, no userinfo (SPIFFE Federation 5.2.1.1 and 5.2.2.1) and no
// fragment, which a client would never send. The path and query are free.
func ValidateEndpointURL(raw string) (*url.URL, error) {
	u, err := validateEndpointURL(raw)
	if err != nil {
		return nil, fmt.Errorf("federation: %w", err)
	}
	return u, nil
}

func validateEndpointURL(raw string) (*url.URL, error) {
	invalid := func(format string, args ...any) error {
		return withKinds(fmt.Errorf(format, args...), ErrInvalidEndpointURL)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, invalid("invalid endpoint URL: %w", err)
	case u.Scheme != "https":
		return nil, invalid("endpoint URL %q has scheme %q; a bundle endpoint must use https",
			u.Redacted(), u.Scheme)
	case u.Opaque != "":
		return nil, invalid("endpoint URL %q is not of the form https://host/path",
			u.Redacted())
	case u.User != nil:
		return nil, invalid("endpoint URL %q contains userinfo; remove the part before @",
			u.Redacted())
	case u.Hostname() == "":
		return nil, invalid("endpoint URL %q has no host", u.Redacted())
	case strings.Contains(raw, "#"):
		return nil, invalid("endpoint URL %q contains a fragment; remove the part from #",
			u.Redacted())
	}
	return u, nil
}
