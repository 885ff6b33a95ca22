package verify

import "errors"

// Error codes of *Error. They are part of the HTTP API, so they never change.
const (
	// CodeUnknownTrustDomain: the credential's trust domain is neither the local
	// one nor a federated one.
	CodeUnknownTrustDomain = "unknown_trust_domain"
	// CodeNoBundle: the trust domain is federated but no bundle has been fetched
	// yet, or its bundle has no key for this kind of SVID. Every SVID of a trust
	// domain with an empty bundle is invalid (SPIFFE Trust Domain and Bundle 4.1.3).
	CodeNoBundle = "no_bundle"
	// CodeExpired: exp of a JWT-SVID, or NotAfter of a certificate, has passed.
	CodeExpired = "expired"
	// CodeNotYetValid: nbf or iat of a JWT-SVID, or NotBefore of a certificate,
	// lies in the future.
	CodeNotYetValid = "not_yet_valid"
	// CodeBadSignature: no key or CA of the trust domain's bundle verifies the
	// credential.
	CodeBadSignature = "bad_signature"
	// CodeUnknownKeyID: the kid of a JWT-SVID names no jwt-svid key of the
	// trust domain's bundle.
	CodeUnknownKeyID = "unknown_key_id"
	// CodeAudienceMismatch: none of the JWT-SVID's aud values is an expected one.
	CodeAudienceMismatch = "audience_mismatch"
	// CodeIDNotAllowed: the SPIFFE ID is outside the prefixes allowed for its
	// federated trust domain.
	CodeIDNotAllowed = "id_not_allowed"
	// CodeMalformed: the credential cannot be a valid SVID whatever the keys, for
	// example a token that is not a compact JWS, a rejected alg, a missing or
	// invalid sub, an unparsable certificate chain or a leaf with several URI SANs.
	CodeMalformed = "malformed"
	// CodeInvalidRequest: the request itself is unusable, for example no expected
	// audience or a body that is not the documented JSON. The HTTP API returns
	// status 400 for it.
	CodeInvalidRequest = "invalid_request"
)

// Error is a failed verification. Code is one of the Code constants and Message
// is a sentence that names the failing values.
type Error struct {
	Code    string
	Message string
	// ClaimedID is the SPIFFE ID that the credential claims, or "" when it could
	// not be read. It has not been verified, so use it for logs only.
	ClaimedID string
}

func (e *Error) Error() string {
	return "verify: " + e.Message
}

// ErrorCode returns the code of the *Error in err's chain, or "" when there is
// none.
func ErrorCode(err error) string {
	var verifyErr *Error
	if errors.As(err, &verifyErr) {
		return verifyErr.Code
	}
	return ""
}
