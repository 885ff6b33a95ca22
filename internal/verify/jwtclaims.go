package verify

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/bundle"
)

// parsedToken is a JWT-SVID whose structure has been checked but whose signature
// has not.
type parsedToken struct {
	jws      *compactJWS
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
	jws, err := parseCompactJWS(token)
	if err != nil {
		return nil, err
	}
	tok := &parsedToken{jws: jws}
	if err := tok.decodeClaims(jws.payload); err != nil {
		return nil, err
	}
	return tok, nil
}

// decodeClaims reads sub, aud, exp, nbf and iat from the unverified payload.
func (t *parsedToken) decodeClaims(payload []byte) *Error {
	if err := json.Unmarshal(payload, &t.claims); err != nil || t.claims == nil {
		return malformed("", "token claims are not a JSON object")
	}
	// encoding/json keeps the last of repeated names. RFC 7519 4 allows that or
	// a rejection, and go-jose, which go-spiffe uses, rejects: a claim that
	// appears twice could mean different things to different validators.
	if countMembers(payload) != len(t.claims) {
		return malformed("", "token claims repeat a claim name")
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
	if id.Path() == "" {
		return malformed(sub, "token sub %s has no path; the sub of a JWT-SVID names a "+
			"workload below its trust domain", sub)
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

// countMembers returns the number of members of the JSON object in data, which
// must be valid JSON, as a successful json.Unmarshal has shown. A non-empty
// object has a string at depth one, and one member more than it has commas at
// that depth.
func countMembers(data []byte) int {
	depth, commas := 0, 0
	empty, inString := true, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			switch c {
			case '\\':
				i++ // an escaped quote does not end the string
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			if depth == 1 {
				empty = false
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			if depth == 1 {
				commas++
			}
		}
	}
	if empty {
		return 0
	}
	return commas + 1
}
