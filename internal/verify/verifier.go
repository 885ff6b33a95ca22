package verify

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

const (
	// DefaultClockSkew is the leeway for JWT-SVID time claims: a token counts as
	// expired only once exp is this far in the past, and as not yet valid only
	// while nbf or iat is this far in the future. 30 seconds covers the drift of
	// NTP-synchronized hosts; JWT-SVID Appendix A allows "a small amount of
	// leeway" for exp.
	DefaultClockSkew = 30 * time.Second
	// MaxClockSkew is the largest leeway WithClockSkew accepts. More would keep
	// accepting tokens whose short lifetime is their main protection against
	// replay (JWT-SVID 7.1).
	MaxClockSkew = 5 * time.Minute
)

// Result describes a valid SVID.
type Result struct {
	// SPIFFEID is the verified SPIFFE ID, "spiffe://<trust domain>/<path>".
	SPIFFEID string
	// TrustDomain is the name of the trust domain whose bundle verified the SVID.
	TrustDomain string
	// ExpiresAt is exp of a JWT-SVID, or the earliest NotAfter of the verified
	// certificate chain of an X509-SVID.
	ExpiresAt time.Time
	// IssuedAt is iat of a JWT-SVID; zero when absent and for X509-SVIDs.
	IssuedAt time.Time
	// Audience is aud of a JWT-SVID.
	Audience []string
	// Claims are all claims of a JWT-SVID, as decoded by encoding/json.
	Claims map[string]any
	// KeyID is the kid of the bundle key that verified a JWT-SVID.
	KeyID string
	// rawClaims is the JWT-SVID's payload, the JSON object that Claims was
	// decoded from, when it is valid UTF-8; the HTTP API writes it as it is.
	rawClaims []byte
}

// Verifier verifies JWT-SVIDs and X509-SVIDs against a TrustSource. It is safe
// for concurrent use.
type Verifier struct {
	source    TrustSource
	now       func() time.Time
	clockSkew time.Duration
	// compiled caches the index of the last *Trust returned by source.
	compiled atomic.Pointer[compiledTrust]
	results  *resultCache
}

// Option configures a Verifier.
type Option func(*Verifier) error

// WithClock sets the clock; the default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(v *Verifier) error {
		if now == nil {
			return errors.New("verify: clock is nil; pass a function such as time.Now")
		}
		v.now = now
		return nil
	}
}

// WithClockSkew sets the leeway for JWT-SVID time claims, from zero to
// MaxClockSkew. The default is DefaultClockSkew. X509-SVID validity periods are
// checked without leeway, as TLS and go-spiffe's x509svid.Verify do.
func WithClockSkew(skew time.Duration) Option {
	return func(v *Verifier) error {
		if skew < 0 || skew > MaxClockSkew {
			return fmt.Errorf("verify: clock skew %s is out of range; use 0s to %s",
				skew, MaxClockSkew)
		}
		v.clockSkew = skew
		return nil
	}
}

// WithResultCache sets how many successful JWT-SVID verifications are kept; 0
// turns the cache off. The default is DefaultResultCacheSize.
func WithResultCache(size int) Option {
	return func(v *Verifier) error {
		if size < 0 {
			return fmt.Errorf("verify: result cache size %d is negative; use 0 to turn "+
				"the cache off", size)
		}
		v.results = newResultCache(size)
		return nil
	}
}

// NewVerifier returns a Verifier that reads the bundles from source.
func NewVerifier(source TrustSource, opts ...Option) (*Verifier, error) {
	if source == nil {
		return nil, errors.New("verify: trust source is nil; pass the node's bundle source")
	}
	v := &Verifier{source: source, now: time.Now, clockSkew: DefaultClockSkew,
		results: newResultCache(DefaultResultCacheSize)}
	for _, opt := range opts {
		if err := opt(v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// trust returns the index of the source's current Trust, building it when the
// source returned a different *Trust than last time.
func (v *Verifier) trust() *compiledTrust {
	current := v.source.Trust()
	cached := v.compiled.Load()
	if cached != nil && cached.source == current {
		return cached
	}
	// Two goroutines may build the same index at once; either result is correct.
	compiled := compileTrust(current, cached)
	v.compiled.Store(compiled)
	return compiled
}
