package authority

import (
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// MintJWTSVID signs a JWT-SVID for id with the active JWT key: ES256, with
// the key ID in the kid header and the claims sub, aud, exp and iat. A ttl
// of zero or more than JWTSVIDMaxTTL means JWTSVIDMaxTTL.
func (b *Builtin) MintJWTSVID(id spiffeid.ID, audience []string, ttl time.Duration) (
	string, error) {
	if err := b.checkMember(id); err != nil {
		return "", err
	}
	if err := requirePath(id, "a JWT-SVID"); err != nil {
		return "", err
	}
	// JWT-SVID 3.2: aud is required and holds at least one value.
	if len(audience) == 0 {
		return "", fmt.Errorf("authority: audience for JWT-SVID of %s is empty; pass at least "+
			"one audience", id)
	}
	for _, aud := range audience {
		if aud == "" {
			return "", fmt.Errorf("authority: audience %q for JWT-SVID of %s contains an empty "+
				"value", audience, id)
		}
	}
	now := b.now()
	key, err := b.activeJWTKey(now)
	if err != nil {
		return "", err
	}
	signingKey := jose.SigningKey{
		Algorithm: jose.ES256,
		Key:       jose.JSONWebKey{Key: key.key, KeyID: key.rec.KeyID},
	}
	signer, err := jose.NewSigner(signingKey, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("authority: create JWT signer with key %s: %w", key.rec.KeyID, err)
	}
	claims := jwt.Claims{
		Subject:  id.String(),
		Audience: jwt.Audience(audience),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(capTTL(ttl, b.cfg.JWTSVIDMaxTTL))),
	}
	token, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("authority: sign JWT-SVID for %s with key %s: %w", id,
			key.rec.KeyID, err)
	}
	return token, nil
}

// activeJWTKey returns the key that may sign at now, with the same check of
// ActivateAt as activeCA.
func (b *Builtin) activeJWTKey(now time.Time) (*jwtKey, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, k := range b.jwts {
		if k.rec.Status != statusActive {
			continue
		}
		if now.Before(k.rec.ActivateAt) {
			return nil, fmt.Errorf("authority: active JWT key %s of %s may sign only from %s; "+
				"the clock is at %s, check the system clock", k.rec.KeyID, b.cfg.TrustDomain,
				k.rec.ActivateAt.Format(time.RFC3339), now.Format(time.RFC3339))
		}
		return k, nil
	}
	return nil, fmt.Errorf("authority: no active JWT key for %s; call Tick, which activates "+
		"the next key once it has been published for PublishLead", b.cfg.TrustDomain)
}
