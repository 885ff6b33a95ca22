package verify

import "fmt"

// The request bodies of the API are decoded more strictly than encoding/json
// does: member names match exactly, each member appears at most once, and
// unknown members and data after the object are rejected, so that a misspelled
// or repeated member fails loudly instead of being ignored or overriding
// another. A null member counts as absent.

// decodeJWTSVIDRequest decodes a JWTSVIDRequest without reflection.
func decodeJWTSVIDRequest(body []byte) (JWTSVIDRequest, error) {
	var req JWTSVIDRequest
	fail := func(err error) (JWTSVIDRequest, error) {
		return JWTSVIDRequest{}, requestBodyError(body,
			`{"token": "...", "audience": [...]}`, err)
	}
	reader := newJSONReader(body)
	if err := reader.beginObject(); err != nil {
		return fail(err)
	}
	var seenToken, seenAudience bool
	for {
		name, ok, err := reader.nextMember()
		if err != nil {
			return fail(err)
		}
		if !ok {
			return req, nil
		}
		switch {
		case name == "token" && !seenToken:
			seenToken = true
			if !reader.readNull() {
				if req.Token, err = reader.readString(); err != nil {
					return fail(fmt.Errorf(`"token" must be a string: %w`, err))
				}
			}
		case name == "audience" && !seenAudience:
			seenAudience = true
			if !reader.readNull() {
				if req.Audience, err = reader.readStrings(); err != nil {
					return fail(fmt.Errorf(`"audience" must be a string or an array `+
						"of strings: %w", err))
				}
			}
		case name == "token" || name == "audience":
			return fail(fmt.Errorf("member %q appears twice", name))
		default:
			return fail(fmt.Errorf("unknown member %q", name))
		}
	}
}

// decodeX509SVIDRequest decodes an X509SVIDRequest.
func decodeX509SVIDRequest(body []byte) (X509SVIDRequest, error) {
	var req X509SVIDRequest
	fail := func(err error) (X509SVIDRequest, error) {
		return X509SVIDRequest{}, requestBodyError(body, `{"chain_pem": "..."}`, err)
	}
	reader := newJSONReader(body)
	if err := reader.beginObject(); err != nil {
		return fail(err)
	}
	seenChain := false
	for {
		name, ok, err := reader.nextMember()
		if err != nil {
			return fail(err)
		}
		if !ok {
			return req, nil
		}
		switch {
		case name == "chain_pem" && !seenChain:
			seenChain = true
			if !reader.readNull() {
				if req.ChainPEM, err = reader.readString(); err != nil {
					return fail(fmt.Errorf(`"chain_pem" must be a string: %w`, err))
				}
			}
		case name == "chain_pem":
			return fail(fmt.Errorf("member %q appears twice", name))
		default:
			return fail(fmt.Errorf("unknown member %q", name))
		}
	}
}

// requestBodyError describes why body, which a jsonReader failed on with err,
// is not the object shape. The reader stops at the first unexpected byte,
// which in broken JSON can look like a member of the wrong type, so broken JSON
// is reported as such first.
func requestBodyError(body []byte, shape string, err error) *Error {
	if problem := describeInvalidJSON(body); problem != "" {
		return invalidRequest("request body is not valid JSON: %s", problem)
	}
	return invalidRequest("request body is not the expected JSON object %s (%v)", shape,
		err)
}
