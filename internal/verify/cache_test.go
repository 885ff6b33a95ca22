package verify

import (
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/bundle"
)

func TestResultCacheHitAndTrustChange(t *testing.T) {
	f := newFixture(t)
	token := f.orgA.mint(t, claims("spiffe://org-a.test/agents/planner", f.now))
	first, err := f.verifier.VerifyJWTSVID(token, []string{"billing"})
	require.NoError(t, err)
	second, err := f.verifier.VerifyJWTSVID(token, []string{"billing"})
	require.NoError(t, err)
	require.Equal(t, first, second, "a repeated token returns the same result")

	// Another audience is checked again, not served from the cache.
	_, err = f.verifier.VerifyJWTSVID(token, []string{"other"})
	requireCode(t, err, CodeAudienceMismatch)

	// Once the trust changes (here org A's key is gone), the cached result is
	// no longer used.
	changed := *f.trust
	changed.Federated = map[spiffeid.TrustDomain]*bundle.Bundle{f.orgA.td: bundle.New(f.orgA.td)}
	f.trust = &changed
	_, err = f.verifier.VerifyJWTSVID(token, []string{"billing"})
	requireCode(t, err, CodeNoBundle)
}

func TestResultCacheHonoursExpiry(t *testing.T) {
	f := newFixture(t)
	token := f.orgA.mint(t, claims("spiffe://org-a.test/agents/planner", f.now))
	_, err := f.verifier.VerifyJWTSVID(token, []string{"billing"})
	require.NoError(t, err)

	// claims() sets exp 5 minutes ahead; past exp plus the skew the cached
	// result must not be returned.
	f.now = f.now.Add(5*time.Minute + DefaultClockSkew)
	_, err = f.verifier.VerifyJWTSVID(token, []string{"billing"})
	requireCode(t, err, CodeExpired)
}

func TestResultCacheSizeOption(t *testing.T) {
	_, err := NewVerifier(TrustFunc(func() *Trust { return nil }), WithResultCache(-1))
	require.ErrorContains(t, err, "result cache size -1 is negative")

	c := newResultCache(2)
	trust := &compiledTrust{}
	for i := 0; i < 3; i++ {
		c.put(cacheKey(string(rune('a'+i)), []string{"x"}), trust,
			&Result{ExpiresAt: time.Now().Add(time.Hour)}, time.Time{})
	}
	require.LessOrEqual(t, len(c.entries), 2, "a full cache is emptied before it grows")
	require.Nil(t, newResultCache(0), "size 0 turns the cache off")
}
