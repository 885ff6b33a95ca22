package verify

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bundlex/bundlex/bundle"
	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// allowedAlgorithms are the alg values of JWT-SVID 2.1. Validators must reject any
// other value, which includes "none" and the HMAC algorithms.
var allowedAlgorithms = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512,
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
}

// emptyVerifyOptions trust no CA, so that checking for an x5c header never loads
// the system roots.
var emptyVerifyOptions = x509.VerifyOptions{Roots: x509.NewCertPool()}

// parsedToken is a JWT-SVID whose structure has been checked but whose signature
// has not.
type parsedToken struct {
	jws      *jose.JSONWebSignature
	keyID    string
	id       spiffeid.ID
	subject  string
	audience []string
	expiry   time.Time
	// notBefore and issuedAt are zero when the claim is absent.
	notBefore time.Time
	issuedAt  time.Time
	claims    map[string]any
}

// parseToken checks everything that does not depend on a key: the compact JWS
// form, the header of JWT-SVID 2 and the claims that JWT-SVID 3 requires.
func parseToken(token string) (*parsedToken, *Error) {
	jws, err := jose.ParseSignedCompact(token, allowedAlgorithms)
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return nil, malformed("", "token alg %q is not allowed; a JWT-SVID is signed "+
				"with ES256, ES384, ES512, RS256, RS384, RS512, PS256, PS384 or PS512",
				string(algErr.Got))
		}
		return nil, malformed("", "token is not a JWS in compact serialization (%v)", err)
	}
	header := jws.Signatures[0].Header
	if err := checkHeader(header); err != nil {
		return nil, err
	}
	tok := &parsedToken{jws: jws, keyID: header.KeyID}
	if err := tok.decodeClaims(jws.UnsafePayloadWithoutVerification()); err != nil {
		return nil, err
	}
	return tok, nil
}

// checkHeader applies JWT-SVID 2: only alg, kid and typ may appear, and typ is
// JWT or JOSE when present. Rejecting jwk, x5c and the like also keeps the token
// from naming its own verification key.
func checkHeader(header jose.Header) *Error {
	switch {
	case header.JSONWebKey != nil:
		return malformed("", `token header "jwk" is not allowed; a JWT-SVID header `+
			"holds only alg, kid and typ")
	case header.Nonce != "":
		return malformed("", `token header "nonce" is not allowed; a JWT-SVID header `+
			"holds only alg, kid and typ")
	}
	if _, err := header.Certificates(emptyVerifyOptions); !errors.Is(err,
		jose.ErrMissingX5cHeader) {
		return malformed("", `token header "x5c" is not allowed; a JWT-SVID header `+
			"holds only alg, kid and typ")
	}
	for name, value := range header.ExtraHeaders {
		if name != jose.HeaderType {
			return malformed("", "token header %q is not allowed; a JWT-SVID header "+
				"holds only alg, kid and typ", string(name))
		}
		if value != "JWT" && value != "JOSE" {
			return malformed("", `token header "typ" is %v; a JWT-SVID has typ JWT, `+
				"JOSE or none", value)
		}
	}
	return nil
}

// decodeClaims reads sub, aud, exp, nbf and iat from the unverified payload.
func (t *parsedToken) decodeClaims(payload []byte) *Error {
	if err := json.Unmarshal(payload, &t.claims); err != nil || t.claims == nil {
		return malformed("", "token claims are not a JSON object")
	}
	sub, _ := t.claims["sub"].(string)
	if sub == "" {
		return malformed("", `token has no "sub" claim with a string value; a `+
			"JWT-SVID's sub is the SPIFFE ID of its workload")
	}
	id, err := bundle.ParseID(sub)
	if err != nil {
		return malformed(sub, "token sub is not a valid SPIFFE ID (%v)", err)
	}
	t.id, t.subject = id, id.String()

	var claimErr *Error
	if t.expiry, claimErr = t.numericDate("exp", true); claimErr != nil {
		return claimErr
	}
	if t.notBefore, claimErr = t.numericDate("nbf", false); claimErr != nil {
		return claimErr
	}
	if t.issuedAt, claimErr = t.numericDate("iat", false); claimErr != nil {
		return claimErr
	}
	if !t.issuedAt.IsZero() && t.issuedAt.After(t.expiry) ||
		!t.notBefore.IsZero() && t.notBefore.After(t.expiry) {
		return malformed(t.subject, "token for %s expires at %s, before its iat or nbf",
			t.subject, t.expiry.Format(time.RFC3339))
	}
	return t.decodeAudience()
}

// numericDate reads an RFC 7519 NumericDate: seconds since the epoch, possibly
// fractional.
func (t *parsedToken) numericDate(name string, required bool) (time.Time, *Error) {
	raw, present := t.claims[name]
	if !present {
		if required {
			return time.Time{}, malformed(t.subject, "token for %s has no %q claim; "+
				"JWT-SVID 3.3 requires it", t.subject, name)
		}
		return time.Time{}, nil
	}
	seconds, ok := raw.(float64)
	// The bounds keep the conversion to int64 nanoseconds exact enough and finite.
	if !ok || math.IsNaN(seconds) || seconds < 0 || seconds > 1<<40 {
		return time.Time{}, malformed(t.subject, "token for %s has %q claim %v; expected "+
			"seconds since 1970 as a JSON number", t.subject, name, raw)
	}
	whole, fraction := math.Modf(seconds)
	return time.Unix(int64(whole), int64(fraction*1e9)).UTC(), nil
}

// decodeAudience reads aud, a string or an array of strings (RFC 7519 4.1.3).
// JWT-SVID 3.2 requires at least one value.
func (t *parsedToken) decodeAudience() *Error {
	switch aud := t.claims["aud"].(type) {
	case string:
		if aud != "" {
			t.audience = []string{aud}
		}
	case []any:
		for _, value := range aud {
			s, ok := value.(string)
			if !ok || s == "" {
				return malformed(t.subject, "token for %s has aud value %v; every value "+
					"must be a non-empty string", t.subject, value)
			}
			t.audience = append(t.audience, s)
		}
	case nil:
	default:
		return malformed(t.subject, "token for %s has aud %v; expected a string or an "+
			"array of strings", t.subject, aud)
	}
	if len(t.audience) == 0 {
		return malformed(t.subject, "token for %s has no aud value; JWT-SVID 3.2 "+
			"requires at least one", t.subject)
	}
	return nil
}

func malformed(claimedID, format string, args ...any) *Error {
	return &Error{Code: CodeMalformed, ClaimedID: claimedID,
		Message: fmt.Sprintf(format, args...)}
}
