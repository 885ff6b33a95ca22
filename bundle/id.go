package bundle

import (
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

const (
	// MaxTrustDomainLength is the longest trust domain name accepted, in bytes
	// (SPIFFE-ID 2.3: the name must fit a DNS host name).
	MaxTrustDomainLength = 255
	// MaxIDLength is the longest SPIFFE ID accepted, in bytes (SPIFFE-ID 2.3).
	MaxIDLength = 2048
)

// ParseTrustDomain parses a trust domain name, given bare ("org-b.test") or as a
// SPIFFE ID without a path ("spiffe://org-b.test"). It applies go-spiffe's
// character rules plus the length limit of SPIFFE-ID 2.3.
func ParseTrustDomain(s string) (spiffeid.TrustDomain, error) {
	name := s
	if strings.HasPrefix(s, "spiffe://") {
		id, err := ParseID(s)
		if err != nil {
			return spiffeid.TrustDomain{}, err
		}
		if id.Path() != "" {
			return spiffeid.TrustDomain{}, fmt.Errorf(
				"bundle: invalid trust domain %q: a trust domain has no path; use %q",
				s, id.TrustDomain().Name())
		}
		return id.TrustDomain(), nil
	}
	if len(name) > MaxTrustDomainLength {
		return spiffeid.TrustDomain{}, fmt.Errorf(
			"bundle: invalid trust domain %.40q...: %d bytes, the maximum is %d",
			name, len(name), MaxTrustDomainLength)
	}
	td, err := spiffeid.TrustDomainFromString(name)
	if err != nil {
		return spiffeid.TrustDomain{}, fmt.Errorf("bundle: invalid trust domain %q: %v; "+
			"use lowercase letters, digits, '.', '-' and '_' only, without scheme or port",
			name, err)
	}
	return td, nil
}

// ParseID parses a SPIFFE ID and applies the limits of SPIFFE-ID 2. The trust
// domain must be valid and at most 255 bytes. Path segments use [a-zA-Z0-9._-] and
// are not empty, "." or "..". No query or fragment is allowed, and the whole ID is
// at most 2048 bytes.
func ParseID(s string) (spiffeid.ID, error) {
	if len(s) > MaxIDLength {
		return spiffeid.ID{}, fmt.Errorf("bundle: invalid SPIFFE ID %.60q...: %d bytes, "+
			"the maximum is %d", s, len(s), MaxIDLength)
	}
	id, err := spiffeid.FromString(s)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("bundle: invalid SPIFFE ID %q: %v; "+
			"expected spiffe://<trust domain>/<path>", s, err)
	}
	if n := len(id.TrustDomain().Name()); n > MaxTrustDomainLength {
		return spiffeid.ID{}, fmt.Errorf("bundle: invalid SPIFFE ID %.60q...: trust domain "+
			"has %d bytes, the maximum is %d", s, n, MaxTrustDomainLength)
	}
	return id, nil
}
