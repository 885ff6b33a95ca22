package verify

import (
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/bundlex/bundlex/bundle"
	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
)

func TestVerifyJWTSVIDAccepts(t *testing.T) {
	f := newFixture(t)
	local := claims(f.orgB.id("/billing/api"), f.now)
	local["tenant"] = "blue"
	result, err := f.verifier.VerifyJWTSVID(f.orgB.mint(t, local), []string{"billing"})
	require.NoError(t, err)
	require.Equal(t, "spiffe://org-b.test/billing/api", result.SPIFFEID)
	require.Equal(t, "org-b.test", result.TrustDomain)
	require.Equal(t, f.now.Add(5*time.Minute).UTC(), result.ExpiresAt)
	require.Equal(t, f.now.Add(-time.Minute).UTC(), result.IssuedAt)
	require.Equal(t, []string{"billing"}, result.Audience)
	require.Equal(t, f.orgB.kid, result.KeyID)
	require.Equal(t, "blue", result.Claims["tenant"])
	require.Equal(t, "spiffe://org-b.test/billing/api", result.Claims["sub"])

	federated := f.orgA.mint(t, claims(f.orgA.id("/agents/planner"), f.now))
	result, err = f.verifier.ValidateJWTSVID(federated, "billing")
	require.NoError(t, err)
	require.Equal(t, "spiffe://org-a.test/agents/planner", result.SPIFFEID)
	require.Equal(t, "org-a.test", result.TrustDomain)
	require.Equal(t, f.orgA.kid, result.KeyID)
}

func TestVerifyJWTSVIDRejects(t *testing.T) {
	f := newFixture(t)
	orgC := newOrg(t, "org-c.test")
	hmacKey := []byte(strings.Repeat("k", 32))
	agent := f.orgA.id("/agents/planner")
	valid := func() map[string]any { return claims(agent, f.now) }
	with := func(name string, value any) map[string]any {
		c := valid()
		if value == nil {
			delete(c, name)
		} else {
			c[name] = value
		}
		return c
	}
	tests := []struct {
		name      string
		token     string
		audience  []string
		code      string
		fragments []string
	}{
		{"subject in unknown trust domain",
			orgC.mint(t, claims(orgC.id("/svc"), f.now)), nil, CodeUnknownTrustDomain,
			[]string{`"org-c.test"`, `"org-b.test"`}},
		{"org-a subject with org-b kid",
			f.orgB.mint(t, valid()), nil, CodeUnknownKeyID,
			[]string{`kid "org-b.test-jwt-1"`, `"org-a.test"`}},
		{"org-a subject signed by org-b",
			mint(t, tokenSpec{key: f.orgB.jwtKey, kid: f.orgA.kid, claims: valid()}), nil,
			CodeBadSignature, []string{agent, `"org-a.test-jwt-1"`}},
		{"kid absent from bundle",
			mint(t, tokenSpec{key: f.orgA.jwtKey, kid: "retired", claims: valid()}), nil,
			CodeUnknownKeyID, []string{`"retired"`, "org-a.test-jwt-1"}},
		{"no kid and foreign key",
			mint(t, tokenSpec{key: f.orgB.jwtKey, claims: valid()}), nil,
			CodeBadSignature, []string{"has no kid"}},
		{"wrong audience", f.orgA.mint(t, valid()), []string{"payroll"},
			CodeAudienceMismatch, []string{`["billing"]`, `["payroll"]`}},
		{"expired beyond clock skew",
			f.orgA.mint(t, with("exp", f.now.Add(-time.Minute).Unix())), nil, CodeExpired,
			[]string{agent, "30s"}},
		{"expired at clock skew edge",
			f.orgA.mint(t, with("exp", f.now.Add(-DefaultClockSkew).Unix())), nil,
			CodeExpired, nil},
		{"nbf in the future",
			f.orgA.mint(t, with("nbf", f.now.Add(2*time.Minute).Unix())), nil,
			CodeNotYetValid, []string{"nbf"}},
		{"iat in the future",
			f.orgA.mint(t, with("iat", f.now.Add(2*time.Minute).Unix())), nil,
			CodeNotYetValid, []string{"iat"}},
		{"alg none", unsignedToken(t, valid()), nil, CodeMalformed,
			[]string{`alg "none"`}},
		{"alg HS256",
			mint(t, tokenSpec{alg: jose.HS256, key: hmacKey, kid: f.orgA.kid,
				claims: valid()}), nil, CodeMalformed, []string{`alg "HS256"`}},
		{"outside allowed prefixes",
			f.orgA.mint(t, claims(f.orgA.id("/admin/root"), f.now)), nil,
			CodeIDNotAllowed, []string{"spiffe://org-a.test/admin/root",
				"spiffe://org-a.test/agents/"}},
		{"prefix without segment boundary",
			f.orgA.mint(t, claims(f.orgA.id("/toolsX"), f.now)), nil, CodeIDNotAllowed,
			nil},
		{"trailing slash prefix excludes parent",
			f.orgA.mint(t, claims(f.orgA.id("/agents"), f.now)), nil, CodeIDNotAllowed,
			nil},
		{"relationship without bundle",
			f.orgA.mint(t, claims("spiffe://org-d.test/svc", f.now)), nil, CodeNoBundle,
			[]string{`"org-d.test"`}},
		{"empty federated bundle",
			f.orgA.mint(t, claims("spiffe://org-e.test/svc", f.now)), nil, CodeNoBundle,
			[]string{"no jwt-svid keys"}},
		{"not a JWT", "not-a-token", nil, CodeMalformed, []string{"compact serialization"}},
		{"encrypted token shape", "a.b.c.d.e", nil, CodeMalformed, nil},
		{"missing sub", f.orgA.mint(t, with("sub", nil)), nil, CodeMalformed,
			[]string{`"sub"`}},
		{"sub not a SPIFFE ID", f.orgA.mint(t, with("sub", "https://org-a.test/x")), nil,
			CodeMalformed, []string{"not a valid SPIFFE ID"}},
		{"missing exp", f.orgA.mint(t, with("exp", nil)), nil, CodeMalformed,
			[]string{`"exp"`}},
		{"exp not a number", f.orgA.mint(t, with("exp", "tomorrow")), nil, CodeMalformed,
			[]string{`"exp"`}},
		{"exp before iat",
			f.orgA.mint(t, with("iat", f.now.Add(10*time.Minute).Unix())), nil,
			CodeMalformed, []string{"before its iat or nbf"}},
		{"missing aud", f.orgA.mint(t, with("aud", nil)), nil, CodeMalformed,
			[]string{"no aud value"}},
		{"aud with a number", f.orgA.mint(t, with("aud", []any{"billing", 7})), nil,
			CodeMalformed, []string{"aud value 7"}},
		{"typ not JWT",
			mint(t, tokenSpec{key: f.orgA.jwtKey, kid: f.orgA.kid, claims: valid(),
				headers: map[jose.HeaderKey]any{"typ": "at+jwt"}}), nil, CodeMalformed,
			[]string{`"typ"`}},
		{"header not allowed",
			mint(t, tokenSpec{key: f.orgA.jwtKey, kid: f.orgA.kid, claims: valid(),
				headers: map[jose.HeaderKey]any{"jku": "https://attacker.test/keys"}}), nil,
			CodeMalformed, []string{`"jku"`}},
		{"empty expected audience", f.orgA.mint(t, valid()), []string{}, CodeInvalidRequest,
			[]string{"expected audience"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			audience := tt.audience
			if audience == nil {
				audience = []string{"billing"}
			}
			result, err := f.verifier.VerifyJWTSVID(tt.token, audience)
			require.Nil(t, result)
			requireCode(t, err, tt.code, tt.fragments...)
		})
	}
}

func TestVerifyJWTSVIDTamperedPayload(t *testing.T) {
	f := newFixture(t)
	token := f.orgA.mint(t, claims(f.orgA.id("/agents/planner"), f.now))
	forged := f.orgA.mint(t, claims(f.orgA.id("/agents/admin"), f.now))
	parts, forgedParts := strings.Split(token, "."), strings.Split(forged, ".")
	spliced := parts[0] + "." + forgedParts[1] + "." + parts[2]

	_, err := f.verifier.VerifyJWTSVID(spliced, []string{"billing"})
	requireCode(t, err, CodeBadSignature, "spiffe://org-a.test/agents/admin")
}

func TestVerifyJWTSVIDClockSkew(t *testing.T) {
	f := newFixture(t)
	id := f.orgA.id("/agents/planner")
	late := claims(id, f.now)
	late["exp"] = f.now.Add(-10 * time.Second).Unix()
	early := claims(id, f.now)
	early["nbf"] = f.now.Add(10 * time.Second).Unix()
	for name, c := range map[string]map[string]any{"expired within skew": late,
		"nbf within skew": early} {
		t.Run(name, func(t *testing.T) {
			_, err := f.verifier.VerifyJWTSVID(f.orgA.mint(t, c), []string{"billing"})
			require.NoError(t, err)

			strict, err := NewVerifier(TrustFunc(func() *Trust { return f.trust }),
				WithClock(func() time.Time { return f.now }), WithClockSkew(0))
			require.NoError(t, err)
			_, err = strict.VerifyJWTSVID(f.orgA.mint(t, c), []string{"billing"})
			require.Error(t, err)
		})
	}
}

func TestVerifyJWTSVIDAlgorithms(t *testing.T) {
	f := newFixture(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	f.trust.Local.JWTAuthorities = append(f.trust.Local.JWTAuthorities,
		bundle.JWTAuthority{KeyID: "rsa-1", PublicKey: &rsaKey.PublicKey})
	id := f.orgB.id("/svc")
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.PS384, jose.RS512} {
		t.Run("accepts "+string(alg), func(t *testing.T) {
			token := mint(t, tokenSpec{alg: alg, key: rsaKey, kid: "rsa-1",
				claims: claims(id, f.now)})
			result, err := f.verifier.VerifyJWTSVID(token, []string{"billing"})
			require.NoError(t, err)
			require.Equal(t, "rsa-1", result.KeyID)
		})
	}
	t.Run("rejects RSA token with EC kid", func(t *testing.T) {
		token := mint(t, tokenSpec{alg: jose.RS256, key: rsaKey, kid: f.orgB.kid,
			claims: claims(id, f.now)})
		_, err := f.verifier.VerifyJWTSVID(token, []string{"billing"})
		requireCode(t, err, CodeBadSignature, "RS256")
	})
	t.Run("accepts token without kid", func(t *testing.T) {
		token := mint(t, tokenSpec{alg: jose.PS256, key: rsaKey, claims: claims(id, f.now)})
		result, err := f.verifier.VerifyJWTSVID(token, []string{"billing"})
		require.NoError(t, err)
		require.Equal(t, "rsa-1", result.KeyID)
	})
}

func TestVerifyJWTSVIDAudienceAsString(t *testing.T) {
	f := newFixture(t)
	c := claims(f.orgB.id("/svc"), f.now)
	c["aud"] = "billing"
	result, err := f.verifier.VerifyJWTSVID(f.orgB.mint(t, c), []string{"reports", "billing"})
	require.NoError(t, err)
	require.Equal(t, []string{"billing"}, result.Audience)
}
