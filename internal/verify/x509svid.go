package verify

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bundlex/bundlex/bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// MaxChainLength is the largest number of certificates accepted in an X509-SVID
// chain, leaf included. It bounds the work of path building; SPIRE and other
// issuers use a leaf and at most a few intermediates.
const MaxChainLength = 16

// VerifyX509SVID verifies an X509-SVID chain, leaf first. The leaf's single URI
// SAN selects the bundle of its own trust domain. The leaf must be an end-entity
// certificate (X509-SVID 4.3 and 5.2), and the chain must lead to an x509-svid CA
// of that bundle at the Verifier's clock, without clock skew. Last come the ID
// prefixes allowed for a federated trust domain. Every failure is an *Error.
func (v *Verifier) VerifyX509SVID(chain []*x509.Certificate) (*Result, error) {
	if err := checkChainShape(chain); err != nil {
		return nil, err
	}
	leaf := chain[0]
	id, err := leafID(leaf)
	if err != nil {
		return nil, err
	}
	subject := id.String()

	domain, err := v.trust().domain(id.TrustDomain(), subject)
	if err != nil {
		return nil, err
	}
	if domain.keys.roots == nil {
		return nil, &Error{Code: CodeNoBundle, ClaimedID: subject,
			Message: fmt.Sprintf("the bundle of trust domain %q has no x509-svid CA "+
				"certificates, so every X509-SVID of it is rejected", domain.td.Name())}
	}

	if err := checkLeafUsage(leaf, subject); err != nil {
		return nil, err
	}
	verified, err := verifyChain(chain, domain, subject, v.now())
	if err != nil {
		return nil, err
	}
	if err := domain.checkAllowed(subject); err != nil {
		return nil, err
	}
	return &Result{
		SPIFFEID:    subject,
		TrustDomain: domain.td.Name(),
		ExpiresAt:   earliestNotAfter(verified),
	}, nil
}

// verifyChain runs crypto/x509 path validation from the leaf to a CA of the
// bundle (X509-SVID 5.1) and returns the first verified chain.
func verifyChain(chain []*x509.Certificate, domain *domainTrust, subject string,
	now time.Time) ([]*x509.Certificate, *Error) {
	intermediates := x509.NewCertPool()
	for _, cert := range chain[1:] {
		intermediates.AddCert(cert)
	}
	verified, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         domain.keys.roots,
		Intermediates: intermediates,
		// Any extended key usage is accepted, as go-spiffe's x509svid.Verify does:
		// X509-SVID 4.4 only recommends the extension, and TLS peers check
		// serverAuth or clientAuth during their own handshake.
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		CurrentTime: now,
	})
	if err != nil {
		return nil, chainError(err, chain, subject, domain.td, now)
	}
	return verified[0], nil
}

func checkChainShape(chain []*x509.Certificate) *Error {
	switch {
	case len(chain) == 0:
		return malformed("", "certificate chain is empty; send the X509-SVID leaf first, "+
			"then its intermediates")
	case len(chain) > MaxChainLength:
		return malformed("", "certificate chain has %d certificates, the maximum is %d",
			len(chain), MaxChainLength)
	}
	for i, cert := range chain {
		if cert == nil {
			return malformed("", "certificate %d of the chain is missing", i+1)
		}
	}
	return nil
}

// leafID applies X509-SVID 5.2: exactly one URI SAN, a valid SPIFFE ID with a
// non-root path.
func leafID(leaf *x509.Certificate) (spiffeid.ID, *Error) {
	switch len(leaf.URIs) {
	case 0:
		return spiffeid.ID{}, malformed("", "leaf certificate (serial number %#x) has no "+
			"URI SAN; an X509-SVID carries its SPIFFE ID as its only URI SAN",
			leaf.SerialNumber)
	case 1:
	default:
		uris := make([]string, len(leaf.URIs))
		for i, uri := range leaf.URIs {
			uris[i] = uri.String()
		}
		return spiffeid.ID{}, malformed("", "leaf certificate (serial number %#x) has %d "+
			"URI SANs (%s); an X509-SVID has exactly one", leaf.SerialNumber, len(uris),
			strings.Join(uris, ", "))
	}
	uri := leaf.URIs[0].String()
	id, err := bundle.ParseID(uri)
	if err != nil {
		return spiffeid.ID{}, malformed(uri, "leaf certificate URI SAN is not a valid "+
			"SPIFFE ID (%v)", err)
	}
	if id.Path() == "" {
		return spiffeid.ID{}, malformed(uri, "leaf certificate SPIFFE ID %s has no path; "+
			"the ID of a leaf X509-SVID names a workload below its trust domain", uri)
	}
	return id, nil
}

// checkLeafUsage applies X509-SVID 4.3 and 5.2: a leaf is not a CA, sets
// digitalSignature and sets neither keyCertSign nor cRLSign.
func checkLeafUsage(leaf *x509.Certificate, subject string) *Error {
	switch {
	case leaf.IsCA:
		return malformed(subject, "leaf certificate of %s is a CA certificate; an "+
			"X509-SVID leaf has CA set to false", subject)
	case leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0:
		return malformed(subject, "leaf certificate of %s has key usage keyCertSign or "+
			"cRLSign, which only signing certificates may have", subject)
	case leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return malformed(subject, "leaf certificate of %s lacks key usage "+
			"digitalSignature, which every X509-SVID leaf sets", subject)
	}
	return nil
}

// chainError classifies an error of x509.Certificate.Verify for chain.
func chainError(err error, chain []*x509.Certificate, subject string,
	td spiffeid.TrustDomain, now time.Time) *Error {
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && invalid.Reason == x509.Expired && invalid.Cert != nil {
		cert := invalid.Cert
		name := describeCertificate(chain, cert, td)
		if now.Before(cert.NotBefore) {
			return &Error{Code: CodeNotYetValid, ClaimedID: subject,
				Message: fmt.Sprintf("%s in the chain of %s is valid from %s; the time is %s",
					name, subject, cert.NotBefore.UTC().Format(time.RFC3339),
					now.UTC().Format(time.RFC3339))}
		}
		return &Error{Code: CodeExpired, ClaimedID: subject,
			Message: fmt.Sprintf("%s in the chain of %s expired at %s; the time is %s",
				name, subject, cert.NotAfter.UTC().Format(time.RFC3339),
				now.UTC().Format(time.RFC3339))}
	}
	return &Error{Code: CodeBadSignature, ClaimedID: subject,
		Message: fmt.Sprintf("certificate chain of %s does not verify against the x509-svid "+
			"CAs of trust domain %q (%v)", subject, td.Name(), err)}
}

// describeCertificate names cert by its position in chain, counting from 1, or
// as a CA of td's bundle when the chain does not contain it, and then by its
// SPIFFE ID or else its serial number. The subject is no use as a name, because
// X509-SVIDs often have an empty one.
func describeCertificate(chain []*x509.Certificate, cert *x509.Certificate,
	td spiffeid.TrustDomain) string {
	identity := fmt.Sprintf("serial number %#x", cert.SerialNumber)
	for _, uri := range cert.URIs {
		if uri.Scheme == "spiffe" {
			identity = uri.String()
			break
		}
	}
	for i, candidate := range chain {
		if candidate == cert || bytes.Equal(candidate.Raw, cert.Raw) {
			if i == 0 {
				return fmt.Sprintf("certificate 1 (leaf, %s)", identity)
			}
			return fmt.Sprintf("certificate %d (%s)", i+1, identity)
		}
	}
	return fmt.Sprintf("x509-svid CA certificate (%s) of trust domain %q", identity,
		td.Name())
}

func earliestNotAfter(chain []*x509.Certificate) time.Time {
	earliest := chain[0].NotAfter
	for _, cert := range chain[1:] {
		if cert.NotAfter.Before(earliest) {
			earliest = cert.NotAfter
		}
	}
	return earliest.UTC()
}

// ParseCertificateChainPEM parses the CERTIFICATE blocks of data, in order. Text
// before a block is skipped, as pem.Decode does, because PEM files often carry
// explanatory text. Another block type, data after the last block or a
// certificate that does not parse makes the chain malformed.
func ParseCertificateChainPEM(data []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, malformed("", "PEM block %d is a %q block; send CERTIFICATE "+
				"blocks only, leaf first", len(chain)+1, block.Type)
		}
		if len(chain) == MaxChainLength {
			return nil, malformed("", "certificate chain has more than %d certificates",
				MaxChainLength)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, malformed("", "certificate %d of the chain does not parse (%v)",
				len(chain)+1, err)
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 {
		return nil, malformed("", "certificate chain has no PEM CERTIFICATE block")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, malformed("", "certificate chain has data that is not a PEM block "+
			"after certificate %d", len(chain))
	}
	return chain, nil
}
