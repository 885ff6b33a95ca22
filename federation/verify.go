package federation

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// serverVerifier authenticates the bundle endpoint of one peer for every connection
// of a fetch, including the connections to redirect targets.
type serverVerifier struct {
	peer Peer
	// webRoots is nil for the system roots (https_web only).
	webRoots *x509.CertPool
}

func newServerVerifier(peer Peer) (*serverVerifier, error) {
	v := &serverVerifier{peer: peer}
	if peer.Profile != ProfileHTTPSWeb {
		return v, nil
	}
	switch {
	case peer.RootCAs != nil:
		v.webRoots = peer.RootCAs.Clone()
	case len(peer.ExtraRootCAs) > 0:
		roots, err := x509.SystemCertPool()
		if err != nil {
			return nil, withKinds(fmt.Errorf("load the system root CAs to add the "+
				"relationship's CA certificates: %w", err), ErrInvalidConfig)
		}
		v.webRoots = roots
	}
	for _, ca := range peer.ExtraRootCAs {
		v.webRoots.AddCert(ca)
	}
	return v, nil
}

// tlsConfig returns the client configuration for one connection to host.
func (v *serverVerifier) tlsConfig(host string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: host,
		// crypto/tls would verify the chain itself and discard the peer certificates
		// on failure, but a profile mismatch can only be reported from them. So the
		// built-in check is off and VerifyConnection does the whole check for both
		// profiles. VerifyConnection also runs on resumed sessions, which
		// VerifyPeerCertificate does not. The handshake signature is still checked
		// against the leaf's key by crypto/tls.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return v.verify(host, cs.PeerCertificates)
		},
	}
}

func (v *serverVerifier) verify(host string, certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return withKinds(errors.New("server sent no certificate"), ErrServerAuthentication)
	}
	if v.peer.Profile == ProfileHTTPSSPIFFE {
		return v.verifySVID(certs)
	}
	return v.verifyWeb(host, certs)
}

// verifyWeb checks the chain against the Web PKI roots and host against the leaf's
// names (RFC 6125, SPIFFE Federation 5.2.1.4). For a redirect target, host is the
// target's host.
func (v *serverVerifier) verifyWeb(host string, certs []*x509.Certificate) error {
	intermediates := x509.NewCertPool()
	for _, c := range certs[1:] {
		intermediates.AddCert(c)
	}
	leaf := certs[0]
	_, err := leaf.Verify(x509.VerifyOptions{
		DNSName:       host,
		Roots:         v.webRoots,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err == nil {
		return nil
	}
	if id := spiffeURIOf(leaf); id != "" {
		return withKinds(fmt.Errorf("verify server certificate for %s: %w; the "+
			"certificate carries the SPIFFE ID %s, so the server seems to speak %s, but the "+
			"relationship is configured for %s: change the relationship's profile to %s "+
			"with endpoint SPIFFE ID %s if this is the intended endpoint",
			host, err, id, ProfileHTTPSSPIFFE, ProfileHTTPSWeb, ProfileHTTPSSPIFFE, id),
			ErrProfileMismatch, ErrServerAuthentication)
	}
	return withKinds(fmt.Errorf("verify server certificate for %s: %w; check the "+
		"relationship's CA certificates and the host name in its URL", host, err),
		ErrServerAuthentication)
}

// verifySVID checks that the server presents a valid X509-SVID with exactly the
// configured endpoint SPIFFE ID (SPIFFE Federation 5.2.2.3 and 5.2.2.4), verified
// against the bundle of that ID's trust domain. The host name plays no part.
func (v *serverVerifier) verifySVID(certs []*x509.Certificate) error {
	leaf := certs[0]
	want := v.peer.EndpointID

	if spiffeURIOf(leaf) == "" {
		return withKinds(fmt.Errorf("server certificate (subject %q, names %v) has no "+
			"SPIFFE ID, so the server seems to speak %s, but the relationship is configured "+
			"for %s with endpoint SPIFFE ID %s: change the relationship's profile to %s if "+
			"this is the intended endpoint", leaf.Subject.String(), hostNamesOf(leaf),
			ProfileHTTPSWeb, ProfileHTTPSSPIFFE, want, ProfileHTTPSWeb),
			ErrProfileMismatch, ErrServerAuthentication)
	}

	got, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return withKinds(fmt.Errorf("server certificate is not a valid X509-SVID: %w", err),
			ErrServerAuthentication)
	}
	// Compare before verifying, so that the bundle used below is always the one
	// of the configured ID's trust domain, never one picked by the server.
	if got != want {
		return withKinds(fmt.Errorf("server presented SPIFFE ID %s, expected %s; check the "+
			"relationship's endpoint SPIFFE ID", got, want),
			ErrEndpointIDMismatch, ErrServerAuthentication)
	}

	td := want.TrustDomain()
	authorities, err := v.peer.TrustBundle.GetX509BundleForTrustDomain(td)
	if err == nil && authorities == nil {
		err = errors.New("bundle source returned no bundle")
	}
	if err != nil {
		return withKinds(fmt.Errorf("no X.509 bundle of %s to authenticate endpoint %s: %w; "+
			"supply a bootstrap bundle for %s", td, want, err, td), ErrServerAuthentication)
	}

	if _, _, err := x509svid.Verify(certs, authorities); err != nil {
		return withKinds(fmt.Errorf("verify X509-SVID %s against the bundle of %s: %w; "+
			"the stored bundle of %s may be stale or the endpoint's CA is not in it",
			want, td, err, td), ErrServerAuthentication)
	}
	return nil
}

// spiffeURIOf returns the first spiffe:// URI SAN of cert, or "" when it has none.
// It only distinguishes the profiles, and x509svid does the strict parsing.
func spiffeURIOf(cert *x509.Certificate) string {
	for _, u := range cert.URIs {
		if u.Scheme == "spiffe" {
			return u.String()
		}
	}
	return ""
}

// hostNamesOf returns the DNS names and IP addresses of cert.
func hostNamesOf(cert *x509.Certificate) []string {
	names := append([]string(nil), cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}
