package bundle

import (
	"crypto/x509"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
)

func parseCertificate(der []byte) (*x509.Certificate, error) {
	return x509.ParseCertificate(der)
}

// X509Bundle returns the X.509 authorities as a go-spiffe bundle, for verifying
// X509-SVIDs and https_spiffe endpoints.
func (b *Bundle) X509Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(b.TrustDomain, b.X509Authorities)
}

// JWTBundle returns the jwt-svid keys as a go-spiffe bundle, for verifying
// JWT-SVIDs (JWT-SVID 6.2: only jwt-svid keys verify JWT-SVIDs).
func (b *Bundle) JWTBundle() *jwtbundle.Bundle {
	out := jwtbundle.New(b.TrustDomain)
	for _, key := range b.JWTAuthorities {
		_ = out.AddJWTAuthority(key.KeyID, key.PublicKey)
	}
	return out
}

// SPIFFEBundle returns the whole bundle as a go-spiffe bundle.
func (b *Bundle) SPIFFEBundle() *spiffebundle.Bundle {
	out := spiffebundle.New(b.TrustDomain)
	out.SetX509Authorities(b.X509Authorities)
	for _, key := range b.JWTAuthorities {
		_ = out.AddJWTAuthority(key.KeyID, key.PublicKey)
	}
	for _, key := range b.WITAuthorities {
		_ = out.AddWITAuthority(key.KeyID, key.PublicKey)
	}
	if b.HasSequence {
		out.SetSequenceNumber(b.Sequence)
	}
	if b.RefreshHint > 0 {
		out.SetRefreshHint(b.RefreshHint)
	}
	return out
}
