package authority

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// notBeforeBackdate moves NotBefore of every certificate into the past, so
// that a verifier whose clock is a few seconds behind still accepts it.
const notBeforeBackdate = 10 * time.Second

// caKey is one X.509 CA of the schedule. Copies share cert and key, which
// are never modified.
type caKey struct {
	rec  caRecord
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func (c *caKey) clone() *caKey             { cp := *c; return &cp }
func (c *caKey) schedule() *keyRecord      { return &c.rec.keyRecord }
func (c *caKey) fileName() string          { return caKeyFileName(c.rec.Serial) }
func (c *caKey) expiry() time.Time         { return c.cert.NotAfter }
func (c *caKey) onActivate(*BuiltinConfig) {}

// signingEnd is when the active CA hands over: after it, an X509-SVID with the
// maximum TTL would outlive the CA certificate.
func (c *caKey) signingEnd(cfg *BuiltinConfig) time.Time {
	return c.cert.NotAfter.Add(-cfg.X509SVIDMaxTTL)
}

// publishedUntil is the CA's NotAfter: every leaf it signed ends by then.
func (c *caKey) publishedUntil() time.Time { return c.cert.NotAfter }

func (c *caKey) logAttrs() []any {
	return []any{"ca_serial", c.rec.Serial, "not_after", c.cert.NotAfter}
}

// jwtKey is one JWT signing key of the schedule.
type jwtKey struct {
	rec jwtRecord
	key *ecdsa.PrivateKey
}

func (k *jwtKey) clone() *jwtKey       { cp := *k; return &cp }
func (k *jwtKey) schedule() *keyRecord { return &k.rec.keyRecord }
func (k *jwtKey) fileName() string     { return jwtKeyFileName(k.rec.KeyID) }
func (k *jwtKey) logAttrs() []any      { return []any{"kid", k.rec.KeyID} }

// expiry is zero because a JWT key has no validity period of its own.
func (k *jwtKey) expiry() time.Time { return time.Time{} }

func (k *jwtKey) signingEnd(cfg *BuiltinConfig) time.Time {
	return k.rec.ActivatedAt.Add(cfg.JWTKeyTTL)
}

// publishedUntil is when the last JWT-SVID this key may have signed expires
// (SPIFFE Federation 4.1: old keys go once no SVID signed by them remains).
func (k *jwtKey) publishedUntil() time.Time {
	return k.rec.DeactivatedAt.Add(time.Duration(k.rec.MaxSVIDTTLSeconds) * time.Second)
}

func (k *jwtKey) onActivate(cfg *BuiltinConfig) {
	k.raiseMaxSVIDTTL(cfg.JWTSVIDMaxTTL)
}

// raiseMaxSVIDTTL records ttl, rounded up to whole seconds, if it is longer
// than any maximum in force before while this key was active.
func (k *jwtKey) raiseMaxSVIDTTL(ttl time.Duration) bool {
	seconds := int64((ttl + time.Second - 1) / time.Second)
	if seconds <= k.rec.MaxSVIDTTLSeconds {
		return false
	}
	k.rec.MaxSVIDTTLSeconds = seconds
	return true
}

// newCAKey creates a self-signed CA certificate for td valid from now for ttl.
func newCAKey(td spiffeid.TrustDomain, now time.Time, ttl time.Duration) (*caKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("authority: generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}

	tdURI := td.ID().URL()
	template := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"bundlex"},
			CommonName:   td.Name(),
		},
		NotBefore:             now.Add(-notBeforeBackdate).Truncate(time.Second),
		NotAfter:              now.Add(ttl).Truncate(time.Second),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{tdURI},
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("authority: create CA certificate for %s: %w", td, err)
	}

	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("authority: parse new CA certificate: %w", err)
	}
	rec := caRecord{Serial: fmt.Sprintf("%x", serial), Certificate: der}
	return &caKey{rec: rec, cert: cert, key: key}, nil
}

// randomSerial returns a positive serial number with 128 random bits, which
// RFC 5280 4.1.2.2 allows (at most 20 octets).
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		serial, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("authority: generate serial number: %w", err)
		}
		if serial.Sign() > 0 {
			return serial, nil
		}
	}
}

// subjectKeyID derives the key identifier as RFC 7093 section 2 method 1 does:
// the leftmost 160 bits of the SHA-256 hash of the subjectPublicKey bits.
func subjectKeyID(pub *ecdsa.PublicKey) ([]byte, error) {
	ecdhKey, err := pub.ECDH()
	if err != nil {
		return nil, fmt.Errorf("authority: encode public key: %w", err)
	}
	sum := sha256.Sum256(ecdhKey.Bytes())
	return sum[:20], nil
}

// newJWTKey creates a P-256 key with a random key ID that no key in taken uses.
func newJWTKey(taken func(kid string) bool) (*jwtKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("authority: generate JWT key: %w", err)
	}
	for {
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return nil, fmt.Errorf("authority: generate key ID: %w", err)
		}
		kid := base64.RawURLEncoding.EncodeToString(raw[:])
		if !taken(kid) {
			return &jwtKey{rec: jwtRecord{KeyID: kid}, key: key}, nil
		}
	}
}
