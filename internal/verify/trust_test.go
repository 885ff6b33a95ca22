package verify

import (
	"testing"
	"time"

	"github.com/bundlex/bundlex/bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

func TestPrefixAllows(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		id     string
		want   bool
	}{
		{"slash prefix allows child", "spiffe://org-a.test/agents/",
			"spiffe://org-a.test/agents/planner", true},
		{"slash prefix allows grandchild", "spiffe://org-a.test/agents/",
			"spiffe://org-a.test/agents/x/y", true},
		{"slash prefix rejects parent", "spiffe://org-a.test/agents/",
			"spiffe://org-a.test/agents", false},
		{"bare prefix allows itself", "spiffe://org-a.test/agents",
			"spiffe://org-a.test/agents", true},
		{"bare prefix allows child", "spiffe://org-a.test/agents",
			"spiffe://org-a.test/agents/x", true},
		{"bare prefix rejects longer segment", "spiffe://org-a.test/agents",
			"spiffe://org-a.test/agentsX", false},
		{"prefix rejects sibling", "spiffe://org-a.test/agents",
			"spiffe://org-a.test/admin", false},
		{"trust domain prefix allows all", "spiffe://org-a.test",
			"spiffe://org-a.test/anything", true},
		{"trust domain prefix rejects longer name", "spiffe://org-a.test",
			"spiffe://org-a.testing/x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, prefixAllows(tt.prefix, tt.id))
		})
	}
}

func TestInvalidPrefixRejectsWholeDomain(t *testing.T) {
	f := newFixture(t)
	token := f.orgA.mint(t, claims(f.orgA.id("/agents/planner"), f.now))
	for name, prefixes := range map[string][]string{
		"prefix in other domain": {"spiffe://org-b.test/agents/"},
		"prefix not an ID":       {"org-a.test/agents"},
		"empty prefix":           {""},
	} {
		t.Run(name, func(t *testing.T) {
			f.trust = &Trust{Local: f.trust.Local, Federated: f.trust.Federated,
				AllowedIDPrefixes: map[spiffeid.TrustDomain][]string{f.orgA.td: prefixes}}
			_, err := f.verifier.VerifyJWTSVID(token, []string{"billing"})
			requireCode(t, err, CodeIDNotAllowed, "fix the prefixes")
		})
	}
}

func TestVerifierFollowsTrustChanges(t *testing.T) {
	f := newFixture(t)
	id := f.orgA.id("/agents/planner")
	oldToken := f.orgA.mint(t, claims(id, f.now))
	_, err := f.verifier.VerifyJWTSVID(oldToken, []string{"billing"})
	require.NoError(t, err)
	before := f.verifier.compiled.Load()

	// Rotate org-a's JWT key: a new Trust with a new bundle for org-a only.
	rotated := newOrg(t, "org-a.test")
	rotated.kid = "org-a.test-jwt-2"
	federated := map[spiffeid.TrustDomain]*bundle.Bundle{}
	for td, b := range f.trust.Federated {
		federated[td] = b
	}
	federated[f.orgA.td] = rotated.bundle()
	f.trust = &Trust{Local: f.trust.Local, Federated: federated}

	_, err = f.verifier.VerifyJWTSVID(oldToken, []string{"billing"})
	requireCode(t, err, CodeUnknownKeyID, `"org-a.test-jwt-1"`)
	// The new Trust has no prefixes, so IDs outside /agents/ are allowed now.
	result, err := f.verifier.VerifyJWTSVID(rotated.mint(t, claims(rotated.id("/admin"),
		f.now)), []string{"billing"})
	require.NoError(t, err)
	require.Equal(t, "org-a.test-jwt-2", result.KeyID)

	after := f.verifier.compiled.Load()
	require.NotSame(t, before, after)
	require.Same(t, before.byBundle[f.trust.Local], after.byBundle[f.trust.Local],
		"the index of the unchanged local bundle is reused")
}

func TestVerifierWithoutTrust(t *testing.T) {
	f := newFixture(t)
	verifier, err := NewVerifier(TrustFunc(func() *Trust { return nil }),
		WithClock(func() time.Time { return f.now }))
	require.NoError(t, err)
	_, err = verifier.VerifyJWTSVID(f.orgB.mint(t, claims(f.orgB.id("/svc"), f.now)),
		[]string{"billing"})
	requireCode(t, err, CodeUnknownTrustDomain, "none yet")
}

func TestBundleStoredUnderOtherDomain(t *testing.T) {
	f := newFixture(t)
	f.trust = &Trust{Local: f.trust.Local, Federated: map[spiffeid.TrustDomain]*bundle.Bundle{
		// org-a's entry holds org-b's bundle, which must never verify org-a IDs.
		f.orgA.td: f.orgB.bundle(),
	}}
	token := mint(t, tokenSpec{key: f.orgB.jwtKey, kid: f.orgB.kid,
		claims: claims(f.orgA.id("/agents/planner"), f.now)})
	_, err := f.verifier.VerifyJWTSVID(token, []string{"billing"})
	requireCode(t, err, CodeNoBundle, `belongs to trust domain "org-b.test"`)
}

func TestNewVerifierOptions(t *testing.T) {
	source := TrustFunc(func() *Trust { return nil })
	tests := []struct {
		name    string
		source  TrustSource
		opts    []Option
		message string
	}{
		{"nil trust source", nil, nil, "trust source is nil"},
		{"nil clock", source, []Option{WithClock(nil)}, "clock is nil"},
		{"negative clock skew", source, []Option{WithClockSkew(-time.Second)},
			"clock skew -1s is out of range"},
		{"clock skew over maximum", source, []Option{WithClockSkew(time.Hour)},
			"clock skew 1h0m0s is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier(tt.source, tt.opts...)
			require.ErrorContains(t, err, tt.message)
		})
	}
	verifier, err := NewVerifier(source)
	require.NoError(t, err)
	require.Equal(t, DefaultClockSkew, verifier.clockSkew)
}
