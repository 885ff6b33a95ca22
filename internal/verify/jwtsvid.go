package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// VerifyJWTSVID verifies a JWT-SVID for a validator that identifies with any of
// the values in audience, following JWT-SVID 2 to 4. The unverified sub selects
// the bundle of its own trust domain, and the kid header selects a jwt-svid key
// of that bundle. Then the signature, exp, nbf, iat and aud are checked, and
// last the ID prefixes allowed for a federated trust domain. Every failure is an
// *Error.
func (v *Verifier) VerifyJWTSVID(token string, audience []string) (*Result, error) {
	if err := checkExpectedAudience(audience); err != nil {
		return nil, err
	}
	trust := v.trust()
	key := cacheKey(token, audience)
	if result, ok := v.results.get(key, trust, v.now(), v.clockSkew); ok {
		return result, nil
	}
	tok, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	domain, err := trust.domain(tok.id.TrustDomain(), tok.subject)
	if err != nil {
		return nil, err
	}
	keyID, err := verifySignature(tok, domain)
	if err != nil {
		return nil, err
	}
	if err := v.checkTokenTimes(tok); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(tok.audience, func(aud string) bool {
		return slices.Contains(audience, aud)
	}) {
		return nil, &Error{Code: CodeAudienceMismatch, ClaimedID: tok.subject,
			Message: fmt.Sprintf("token for %s has audience %q but the validator expects "+
				"one of %q", tok.subject, tok.audience, audience)}
	}
	if err := domain.checkAllowed(tok.subject); err != nil {
		return nil, err
	}
	result := &Result{
		SPIFFEID:    tok.subject,
		TrustDomain: domain.td.Name(),
		ExpiresAt:   tok.expiry,
		IssuedAt:    tok.issuedAt,
		Audience:    tok.audience,
		Claims:      tok.claims,
		KeyID:       keyID,
	}
	// encoding/json turned invalid UTF-8 into U+FFFD in Claims, so such a
	// payload is encoded again from Claims instead of copied.
	if utf8.Valid(tok.jws.payload) {
		result.rawClaims = tok.jws.payload
	}
	v.results.put(key, trust, result, latest(tok.notBefore, tok.issuedAt))
	return result, nil
}

// latest returns the later of two times, ignoring zero ones.
func latest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.After(a)) {
		return b
	}
	return a
}

// ValidateJWTSVID verifies token for a single audience, like the Workload API's
// ValidateJWTSVID. It is VerifyJWTSVID(token, []string{audience}).
func (v *Verifier) ValidateJWTSVID(token, audience string) (*Result, error) {
	return v.VerifyJWTSVID(token, []string{audience})
}

func checkExpectedAudience(audience []string) error {
	// JWT-SVID 3.2: the validator rejects a token unless a value it identifies
	// with is in aud, so it must name at least one.
	if len(audience) == 0 || slices.Contains(audience, "") {
		return &Error{Code: CodeInvalidRequest,
			Message: fmt.Sprintf("expected audience %q is empty or contains an empty value; "+
				"name the audience this validator identifies with", audience)}
	}
	return nil
}

// verifySignature checks the signature with the jwt-svid key named by kid and
// returns the kid of the key that verified it. Only jwt-svid keys verify
// JWT-SVIDs, and a bundle without them means the trust domain does not support
// JWT-SVID (JWT-SVID 6.2). kid is optional (JWT-SVID 2.2), so a token without one
// is tried against every jwt-svid key of the bundle.
func verifySignature(tok *parsedToken, domain *domainTrust) (string, *Error) {
	keys := domain.keys
	if len(keys.jwtKeyIDs) == 0 {
		return "", &Error{Code: CodeNoBundle, ClaimedID: tok.subject,
			Message: fmt.Sprintf("the bundle of trust domain %q has no jwt-svid keys, so "+
				"every JWT-SVID of it is rejected", domain.td.Name())}
	}
	if tok.jws.keyID == "" {
		for _, keyID := range keys.jwtKeyIDs {
			if err := tok.jws.verify(keys.jwtKeys[keyID]); err == nil {
				return keyID, nil
			}
		}
		return "", &Error{Code: CodeBadSignature, ClaimedID: tok.subject,
			Message: fmt.Sprintf("token for %s has no kid and none of the %d jwt-svid keys "+
				"of trust domain %q verifies its signature", tok.subject,
				len(keys.jwtKeyIDs), domain.td.Name())}
	}
	key, ok := keys.jwtKeys[tok.jws.keyID]
	if !ok {
		return "", &Error{Code: CodeUnknownKeyID, ClaimedID: tok.subject,
			Message: fmt.Sprintf("token for %s has kid %q, which is not a jwt-svid key of "+
				"trust domain %q (its kids are %s)", tok.subject, tok.jws.keyID,
				domain.td.Name(), strings.Join(keys.jwtKeyIDs, ", "))}
	}
	if err := tok.jws.verify(key); err != nil {
		return "", signatureError(tok, domain, key, err)
	}
	return tok.jws.keyID, nil
}

func signatureError(tok *parsedToken, domain *domainTrust, key crypto.PublicKey,
	err error) *Error {
	message := fmt.Sprintf("signature of the token for %s (alg %s) does not verify with "+
		"jwt-svid key %q (%s) of trust domain %q", tok.subject, tok.jws.alg.name,
		tok.jws.keyID, describeKey(key), domain.td.Name())
	// A plain mismatch needs no detail; a wrong signature length or a key
	// that cannot fit alg does.
	if err != errSignatureMismatch {
		message += fmt.Sprintf(" (%v)", err)
	}
	return &Error{Code: CodeBadSignature, ClaimedID: tok.subject, Message: message}
}

// describeKey names the key type, so that an alg that cannot match the key
// (ES256 against an RSA key) is visible in the message.
func describeKey(key crypto.PublicKey) string {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if k != nil && k.Curve != nil {
			return "EC " + k.Curve.Params().Name
		}
	case *rsa.PublicKey:
		if k != nil && k.N != nil {
			return fmt.Sprintf("RSA %d", k.N.BitLen())
		}
	}
	return fmt.Sprintf("%T", key)
}

// checkTokenTimes applies exp, nbf and iat with the clock skew (RFC 7519 4.1.4 to
// 4.1.6). A token issued in the future is treated like one not valid yet.
func (v *Verifier) checkTokenTimes(tok *parsedToken) *Error {
	now := v.now()
	if !now.Before(tok.expiry.Add(v.clockSkew)) {
		return &Error{Code: CodeExpired, ClaimedID: tok.subject,
			Message: fmt.Sprintf("token for %s expired at %s; the time is %s and the "+
				"clock skew allowed is %s", tok.subject, tok.expiry.Format(time.RFC3339),
				now.UTC().Format(time.RFC3339), v.clockSkew)}
	}
	for _, claim := range []struct {
		name string
		at   time.Time
	}{{"nbf", tok.notBefore}, {"iat", tok.issuedAt}} {
		if !claim.at.IsZero() && now.Before(claim.at.Add(-v.clockSkew)) {
			return &Error{Code: CodeNotYetValid, ClaimedID: tok.subject,
				Message: fmt.Sprintf("token for %s has %s %s, which is in the future; the "+
					"time is %s and the clock skew allowed is %s", tok.subject, claim.name,
					claim.at.Format(time.RFC3339), now.UTC().Format(time.RFC3339),
					v.clockSkew)}
		}
	}
	return nil
}
