package verify

import (
	"crypto/sha256"
	"strings"
	"sync"
	"time"
)

// DefaultResultCacheSize is how many successful JWT-SVID verifications are kept.
// A service receives the same token of an agent many times until it expires, and
// the signature check is most of the cost of a verification.
const DefaultResultCacheSize = 4096

// resultCache keeps successful JWT-SVID verifications. An entry is used only
// with the same trust (bundles and policy) it was verified against, and only
// while the token's times are still within the clock skew. A failed verification
// is never cached.
type resultCache struct {
	max     int
	mu      sync.Mutex
	entries map[[sha256.Size]byte]cachedResult
}

type cachedResult struct {
	result    Result
	trust     *compiledTrust
	notBefore time.Time // the latest of nbf and iat, zero when absent
	expiry    time.Time
}

func newResultCache(size int) *resultCache {
	if size <= 0 {
		return nil
	}
	return &resultCache{max: size, entries: make(map[[sha256.Size]byte]cachedResult)}
}

func cacheKey(token string, audience []string) [sha256.Size]byte {
	return sha256.Sum256([]byte(token + "\x00" + strings.Join(audience, "\x00")))
}

// get returns a copy of the cached result when it still holds at now.
func (c *resultCache) get(key [sha256.Size]byte, trust *compiledTrust, now time.Time,
	skew time.Duration) (*Result, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	entry, ok := c.entries[key]
	c.mu.Unlock()
	if !ok || entry.trust != trust || !now.Before(entry.expiry.Add(skew)) ||
		(!entry.notBefore.IsZero() && now.Before(entry.notBefore.Add(-skew))) {
		return nil, false
	}
	result := entry.result
	return &result, true
}

// put stores a successful result. A full cache is emptied: entries are cheap
// to rebuild, and tokens live minutes.
func (c *resultCache) put(key [sha256.Size]byte, trust *compiledTrust, result *Result,
	notBefore time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[key] = cachedResult{result: *result, trust: trust, notBefore: notBefore,
		expiry: result.ExpiresAt}
}
