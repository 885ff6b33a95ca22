package authority

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/require"
)

func TestMintX509SVIDVerifies(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	b := openBuiltin(t, testConfig(t, clock))
	id := spiffeIDOf(t, "/ns/prod/sa/api")

	svid, err := b.MintX509SVID(id, 0)
	require.NoError(t, err)
	require.Equal(t, id, svid.ID)
	require.Len(t, svid.Certificates, 1)

	x509Bundle, _ := bundlesOf(b.PublicKeys())
	gotID, chains, err := x509svid.Verify(svid.Certificates, x509Bundle, x509svid.WithTime(t0))
	require.NoError(t, err)
	require.Equal(t, id, gotID)
	require.Len(t, chains, 1)

	leaf := svid.Certificates[0]
	require.Len(t, leaf.URIs, 1)
	require.Equal(t, id.String(), leaf.URIs[0].String())
	require.False(t, leaf.IsCA)
	require.True(t, leaf.BasicConstraintsValid)
	require.Equal(t, x509.KeyUsageDigitalSignature, leaf.KeyUsage)
	require.ElementsMatch(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth,
		x509.ExtKeyUsageClientAuth}, leaf.ExtKeyUsage)
	require.Positive(t, leaf.SerialNumber.Sign())

	key, ok := svid.PrivateKey.(*ecdsa.PrivateKey)
	require.True(t, ok, "private key type %T", svid.PrivateKey)
	require.True(t, key.PublicKey.Equal(leaf.PublicKey), "private key matches the leaf")
	certPEM, keyPEM, err := svid.Marshal()
	require.NoError(t, err)
	_, err = x509svid.Parse(certPEM, keyPEM)
	require.NoError(t, err, "go-spiffe accepts the SVID with its key")

	t.Run("other trust domain rejects", func(t *testing.T) {
		other := openBuiltin(t, testConfig(t, clock))
		otherBundle, _ := bundlesOf(other.PublicKeys())
		_, _, err := x509svid.Verify(svid.Certificates, otherBundle, x509svid.WithTime(t0))
		require.Error(t, err)
	})
	t.Run("expired leaf rejects", func(t *testing.T) {
		_, _, err := x509svid.Verify(svid.Certificates, x509Bundle,
			x509svid.WithTime(t0.Add(testX509MaxTTL+time.Second)))
		require.Error(t, err)
	})
}

func TestSignX509SVIDCapsTTL(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		offset    time.Duration // clock position after OpenBuiltin
		ttl       time.Duration
		wantUntil time.Duration // leaf NotAfter minus t0
	}{
		{"zero takes maximum", 0, 0, testX509MaxTTL},
		{"negative takes maximum", 0, -time.Minute, testX509MaxTTL},
		{"short TTL kept", 0, 10 * time.Minute, 10 * time.Minute},
		{"long TTL capped", 0, 5 * time.Hour, testX509MaxTTL},
		{"CA NotAfter caps leaf", 9*time.Hour + 30*time.Minute, 0, testCATTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock(t0)
			b := openBuiltin(t, testConfig(t, clock))
			clock.Advance(tt.offset)
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			require.NoError(t, err)
			chain, err := b.SignX509SVID(spiffeIDOf(t, "/ttl"), &key.PublicKey, tt.ttl)
			require.NoError(t, err)
			require.Equal(t, t0.Add(tt.wantUntil), chain[0].NotAfter)
			require.Equal(t, clock.Now().Add(-notBeforeBackdate), chain[0].NotBefore)
		})
	}
}

func TestSignX509SVIDKeyTypes(t *testing.T) {
	clock := newFakeClock(time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC))
	b := openBuiltin(t, testConfig(t, clock))
	x509Bundle, _ := bundlesOf(b.PublicKeys())
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	publicKeys := map[string]crypto.PublicKey{"RSA": &rsaKey.PublicKey, "Ed25519": edPub}
	for name, pub := range publicKeys {
		t.Run(name+" key accepted", func(t *testing.T) {
			chain, err := b.SignX509SVID(spiffeIDOf(t, "/keys"), pub, 0)
			require.NoError(t, err)
			_, _, err = x509svid.Verify(chain, x509Bundle, x509svid.WithTime(clock.Now()))
			require.NoError(t, err)
		})
	}
}

func TestSignX509SVIDRejectsBadInput(t *testing.T) {
	clock := newFakeClock(time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC))
	b := openBuiltin(t, testConfig(t, clock))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	foreign := spiffeid.RequireFromString("spiffe://org-b.test/api")
	tests := []struct {
		name string
		id   spiffeid.ID
		pub  crypto.PublicKey
		want string
	}{
		{"ID missing", spiffeid.ID{}, &key.PublicKey, "SPIFFE ID is missing"},
		{"foreign trust domain", foreign, &key.PublicKey,
			"spiffe://org-b.test/api is not in trust domain org-a.test"},
		{"root ID without path", testTD.ID(), &key.PublicKey, "has no path"},
		{"nil public key", spiffeIDOf(t, "/a"), nil, "public key type <nil>"},
		{"private key passed", spiffeIDOf(t, "/a"), key, "*ecdsa.PrivateKey for"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.SignX509SVID(tt.id, tt.pub, 0)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
