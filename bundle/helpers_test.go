package bundle

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
)

// newCA returns a self-signed EC P-256 CA certificate for the trust domain td.
func newCA(t *testing.T, td string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	uri, err := url.Parse("spiffe://" + td)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: td + " test CA"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{uri},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert
}

func newJWTKey(t *testing.T, kid string) JWTAuthority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return JWTAuthority{KeyID: kid, PublicKey: &key.PublicKey}
}

// jwkJSON returns a JWK as a generic map so that tests can edit members.
func jwkJSON(t *testing.T, jwk jose.JSONWebKey) map[string]any {
	t.Helper()
	raw, err := jwk.MarshalJSON()
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out))
	return out
}

func x509Key(t *testing.T, cert *x509.Certificate) map[string]any {
	return jwkJSON(t, jose.JSONWebKey{
		Key: cert.PublicKey, Use: UseX509SVID, Certificates: []*x509.Certificate{cert},
	})
}

func jwtKey(t *testing.T, key JWTAuthority) map[string]any {
	return jwkJSON(t, jose.JSONWebKey{Key: key.PublicKey, KeyID: key.KeyID, Use: UseJWTSVID})
}

func docJSON(t *testing.T, doc map[string]any) []byte {
	t.Helper()
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	return raw
}

func b64(cert *x509.Certificate) string {
	return base64.StdEncoding.EncodeToString(cert.Raw)
}
