package authority

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// secretForms returns the encodings in which a private key could leak into a
// log: PEM, base64 of the PKCS#8 DER, and the scalar D in hex, decimal and
// base64url (the JWK "d" member).
func secretForms(t *testing.T, key *ecdsa.PrivateKey) []string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	d, err := key.Bytes()
	require.NoError(t, err)
	return []string{
		strings.Split(pemText, "\n")[1],
		base64.StdEncoding.EncodeToString(der)[:40],
		hex.EncodeToString(d),
		new(big.Int).SetBytes(d).String(),
		base64.RawURLEncoding.EncodeToString(d),
		base64.StdEncoding.EncodeToString(d),
	}
}

func TestBuiltinLogsNoPrivateKeys(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	logs := &logBuffer{}
	cfg := testConfig(t, clock)
	cfg.Logger = logs.logger()

	var keys []*ecdsa.PrivateKey
	collect := func(b *Builtin) {
		b.mu.RLock()
		defer b.mu.RUnlock()
		for _, c := range b.cas {
			keys = append(keys, c.key)
		}
		for _, k := range b.jwts {
			keys = append(keys, k.key)
		}
	}

	b := openBuiltin(t, cfg)
	collect(b)
	require.NoError(t, b.Rotate())
	collect(b)
	require.NoError(t, b.Rotate(), "discards the keys the first Rotate prepared")
	collect(b)
	// Walk the schedule through several rotations so that every log message
	// of prepare, activate, retire and remove is written at least once.
	for range 40 {
		clock.Set(b.NextEvent())
		_, err := b.Tick()
		require.NoError(t, err)
		collect(b)
	}
	svid, err := b.MintX509SVID(spiffeIDOf(t, "/logged"), 0)
	require.NoError(t, err)
	keys = append(keys, svid.PrivateKey.(*ecdsa.PrivateKey))
	_, err = b.MintJWTSVID(spiffeIDOf(t, "/logged"), []string{"aud"}, 0)
	require.NoError(t, err)
	reopened := openBuiltin(t, cfg)
	collect(reopened)

	out := logs.String()
	for _, message := range []string{"created first keys", "prepared key", "activated key",
		"retired key", "removed key from the bundle", "discarded unused prepared key",
		"opened built-in authority"} {
		require.Contains(t, out, message, "log output covers this event")
	}
	require.Greater(t, len(keys), 10)
	for i, key := range keys {
		for _, form := range secretForms(t, key) {
			require.NotContains(t, out, form, "key %d leaked into the log", i)
		}
	}
	require.NotContains(t, out, "PRIVATE KEY")
}
