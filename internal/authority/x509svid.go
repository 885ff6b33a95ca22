package authority

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// MintX509SVID creates a P-256 key and an X509-SVID for id signed by the
// active CA. The returned SVID contains that new private key. A ttl of zero
// or more than X509SVIDMaxTTL means X509SVIDMaxTTL, and the leaf never
// outlives the CA.
func (b *Builtin) MintX509SVID(id spiffeid.ID, ttl time.Duration) (*x509svid.SVID, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("authority: generate X509-SVID key for %s: %w", id, err)
	}
	chain, err := b.SignX509SVID(id, &key.PublicKey, ttl)
	if err != nil {
		return nil, err
	}
	return &x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key}, nil
}

// SignX509SVID signs an X509-SVID leaf for id and pub with the active CA and
// returns the chain to present, which is the leaf alone because the CA is a
// root that verifiers take from the bundle. TTLs are capped as in MintX509SVID.
func (b *Builtin) SignX509SVID(id spiffeid.ID, pub crypto.PublicKey, ttl time.Duration) (
	[]*x509.Certificate, error) {
	if err := b.checkMember(id); err != nil {
		return nil, err
	}
	if err := requirePath(id, "an X509-SVID"); err != nil {
		return nil, err
	}
	switch pub.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("authority: public key type %T for %s is not supported; use an "+
			"ECDSA, RSA or Ed25519 key", pub, id)
	}
	now := b.now()
	ca, err := b.activeCA(now)
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(capTTL(ttl, b.cfg.X509SVIDMaxTTL))
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	notBefore := now.Add(-notBeforeBackdate)
	if notBefore.Before(ca.cert.NotBefore) {
		notBefore = ca.cert.NotBefore
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	template := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"SPIFFE"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		// X509-SVID 4.1, 4.3 and 4.4: a leaf is not a CA, sets digitalSignature
		// but not keyCertSign, and lists both serverAuth and clientAuth.
		BasicConstraintsValid: true,
		IsCA:                  false,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth,
			x509.ExtKeyUsageClientAuth},
		URIs: []*url.URL{id.URL()},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("authority: sign X509-SVID for %s with CA %s: %w", id,
			ca.rec.Serial, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("authority: parse new X509-SVID for %s: %w", id, err)
	}
	return []*x509.Certificate{leaf}, nil
}

// activeCA returns the CA that may sign at now. It enforces SPIFFE
// Federation 4.1 once more at signing time: a key signs only from its
// ActivateAt on, which is PublishLead after publication for every key but
// the first of a new trust domain, even if the clock moved backwards.
func (b *Builtin) activeCA(now time.Time) (*caKey, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, c := range b.cas {
		if c.rec.Status != statusActive {
			continue
		}
		if now.Before(c.rec.ActivateAt) {
			return nil, fmt.Errorf("authority: active CA %s of %s may sign only from %s; the "+
				"clock is at %s, check the system clock", c.rec.Serial, b.cfg.TrustDomain,
				c.rec.ActivateAt.Format(time.RFC3339), now.Format(time.RFC3339))
		}
		if !now.Before(c.cert.NotAfter) {
			break
		}
		return c, nil
	}
	return nil, fmt.Errorf("authority: no usable X.509 CA for %s at %s; call Tick, which "+
		"activates the next CA once it has been published for PublishLead (next event at %s)",
		b.cfg.TrustDomain, now.Format(time.RFC3339), b.nextEventLocked(now).Format(time.RFC3339))
}

// checkMember rejects IDs of other trust domains. Verifiers keep one bundle
// per trust domain (SPIFFE Federation 4.2), so a key signs only for its own.
func (b *Builtin) checkMember(id spiffeid.ID) error {
	if id.IsZero() {
		return fmt.Errorf("authority: SPIFFE ID is missing; pass an ID in %s",
			b.cfg.TrustDomain.IDString())
	}
	if !id.MemberOf(b.cfg.TrustDomain) {
		return fmt.Errorf("authority: SPIFFE ID %s is not in trust domain %s; this authority "+
			"signs only for %s", id, b.cfg.TrustDomain, b.cfg.TrustDomain)
	}
	return nil
}

// capTTL returns limit when ttl is zero, negative or longer than limit.
func capTTL(ttl, limit time.Duration) time.Duration {
	if ttl <= 0 || ttl > limit {
		return limit
	}
	return ttl
}
