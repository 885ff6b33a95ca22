package authority

import (
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/stretchr/testify/require"
)

// realClock returns a fake clock at the current time, because
// jwtsvid.ParseAndValidate checks exp and iat against time.Now.
func realClock() *fakeClock { return newFakeClock(time.Now().Truncate(time.Second)) }

func TestMintJWTSVIDVerifies(t *testing.T) {
	clock := realClock()
	b := openBuiltin(t, testConfig(t, clock))
	id := spiffeIDOf(t, "/ns/prod/sa/api")

	token, err := b.MintJWTSVID(id, []string{"spiffe://org-b.test/db", "reports"}, 0)
	require.NoError(t, err)
	_, jwtBundle := bundlesOf(b.PublicKeys())
	svid, err := jwtsvid.ParseAndValidate(token, jwtBundle, []string{"reports"})
	require.NoError(t, err)
	require.Equal(t, id, svid.ID)
	require.Equal(t, []string{"spiffe://org-b.test/db", "reports"}, svid.Audience)
	require.Equal(t, clock.Now().Add(testJWTMaxTTL).UTC(), svid.Expiry)
	require.EqualValues(t, clock.Now().Unix(), svid.Claims["iat"])

	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	require.NoError(t, err)
	header := parsed.Headers[0]
	require.Equal(t, "ES256", header.Algorithm)
	require.Equal(t, activeKID(t, b), header.KeyID)
	require.Equal(t, "JWT", header.ExtraHeaders[jose.HeaderType])

	t.Run("wrong audience rejects", func(t *testing.T) {
		_, err := jwtsvid.ParseAndValidate(token, jwtBundle, []string{"billing"})
		require.Error(t, err)
	})
	t.Run("other trust domain rejects", func(t *testing.T) {
		other := openBuiltin(t, testConfig(t, clock))
		_, otherBundle := bundlesOf(other.PublicKeys())
		_, err := jwtsvid.ParseAndValidate(token, otherBundle, []string{"reports"})
		require.Error(t, err)
	})
}

func TestMintJWTSVIDCapsTTL(t *testing.T) {
	tests := []struct {
		name string
		ttl  time.Duration
		want time.Duration
	}{
		{"zero takes maximum", 0, testJWTMaxTTL},
		{"negative takes maximum", -time.Second, testJWTMaxTTL},
		{"short TTL kept", time.Minute, time.Minute},
		{"long TTL capped", time.Hour, testJWTMaxTTL},
	}
	clock := realClock()
	b := openBuiltin(t, testConfig(t, clock))
	_, jwtBundle := bundlesOf(b.PublicKeys())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, err := b.MintJWTSVID(spiffeIDOf(t, "/ttl"), []string{"aud"}, tt.ttl)
			require.NoError(t, err)
			svid, err := jwtsvid.ParseAndValidate(token, jwtBundle, []string{"aud"})
			require.NoError(t, err)
			require.Equal(t, clock.Now().Add(tt.want).UTC(), svid.Expiry)
		})
	}
}

func TestMintJWTSVIDRejectsBadInput(t *testing.T) {
	b := openBuiltin(t, testConfig(t, realClock()))
	tests := []struct {
		name     string
		id       spiffeid.ID
		audience []string
		want     string
	}{
		{"audience missing", spiffeIDOf(t, "/a"), nil, "audience for JWT-SVID of"},
		{"empty audience value", spiffeIDOf(t, "/a"), []string{"x", ""},
			"contains an empty value"},
		{"foreign trust domain", spiffeid.RequireFromString("spiffe://org-b.test/a"),
			[]string{"x"}, "is not in trust domain org-a.test"},
		{"trust domain ID", spiffeid.RequireFromString("spiffe://org-a.test"), []string{"x"},
			"authority: SPIFFE ID spiffe://org-a.test has no path; a JWT-SVID needs a " +
				"workload path such as spiffe://org-a.test/workload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.MintJWTSVID(tt.id, tt.audience, 0)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestMintJWTSVIDUniqueKeyIDs(t *testing.T) {
	clock := realClock()
	b := openBuiltin(t, testConfig(t, clock))
	seen := map[string]bool{activeKID(t, b): true}
	for range 20 {
		require.NoError(t, b.Rotate())
		for kid := range b.PublicKeys().JWTAuthorities {
			seen[kid] = true
		}
	}
	require.Len(t, seen, 21, "each Rotate adds a new key ID")
}
