package verify

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Paths of the HTTP API.
const (
	JWTSVIDPath  = "/v1/verify/jwt-svid"
	X509SVIDPath = "/v1/verify/x509-svid"
)

// JWTSVIDRequest is the body of POST /v1/verify/jwt-svid.
type JWTSVIDRequest struct {
	// Token is the JWT-SVID in compact serialization.
	Token string `json:"token"`
	// Audience lists the values the caller identifies with; the token must carry
	// one of them in aud. A single JSON string is accepted too.
	Audience Audience `json:"audience"`
}

// X509SVIDRequest is the JSON body of POST /v1/verify/x509-svid. The endpoint also
// accepts the PEM chain itself as the body, with Content-Type application/x-pem-file
// or application/pem-certificate-chain.
type X509SVIDRequest struct {
	// ChainPEM is the X509-SVID leaf followed by its intermediates, as PEM
	// CERTIFICATE blocks.
	ChainPEM string `json:"chain_pem"`
}

// Audience is a list of audience values that decodes from a JSON string or an
// array of strings.
type Audience []string

// UnmarshalJSON accepts "a" as well as ["a", "b"].
func (a *Audience) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var single string
		if err := json.Unmarshal(data, &single); err != nil {
			return err
		}
		*a = Audience{single}
		return nil
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return errors.New("audience must be a string or an array of strings")
	}
	*a = list
	return nil
}

// Response is the body of every response of the HTTP API. A valid credential has
// Valid true and the verified fields; a rejected one has Valid false and Error.
type Response struct {
	Valid       bool     `json:"valid"`
	SPIFFEID    string   `json:"spiffe_id,omitempty"`
	TrustDomain string   `json:"trust_domain,omitempty"`
	ExpiresAt   string   `json:"expires_at,omitempty"` // RFC 3339, UTC
	IssuedAt    string   `json:"issued_at,omitempty"`  // RFC 3339, UTC; JWT-SVID only
	Audience    []string `json:"audience,omitempty"`
	KeyID       string   `json:"key_id,omitempty"`
	// Claims are the JWT-SVID's claims; absent for X509-SVIDs.
	Claims map[string]any `json:"claims,omitempty"`
	Error  *ErrorBody     `json:"error,omitempty"`
}

// ErrorBody is the error member of a Response. Code is one of the Code constants.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// invalidRequest returns an *Error for a request the API cannot use.
func invalidRequest(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}
