package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// ErrInvalidBundle is wrapped by every error about a malformed bundle document.
var ErrInvalidBundle = errors.New("invalid bundle")

// Warning describes a key that the parser skipped, as SPIFFE Trust Domain and
// Bundle 4.1.3 requires for keys a consumer cannot use. The rest of the bundle
// still counts.
type Warning struct {
	Index  int    // position in the "keys" array
	KeyID  string // "kid" when present
	Use    string // "use" when present
	Reason string
}

func (w Warning) String() string {
	s := fmt.Sprintf("key %d", w.Index)
	if w.KeyID != "" {
		s += fmt.Sprintf(" (kid %q)", w.KeyID)
	}
	return s + ": " + w.Reason
}

// Known key types (RFC 7518 6.1, RFC 8037 2).
var knownKeyTypes = map[string]bool{"EC": true, "RSA": true, "OKP": true}

type rawDocument struct {
	Keys        *[]json.RawMessage `json:"keys"`
	Sequence    json.RawMessage    `json:"spiffe_sequence"`
	RefreshHint json.RawMessage    `json:"spiffe_refresh_hint"`
}

type rawKeyHeader struct {
	KeyType string   `json:"kty"`
	Use     string   `json:"use"`
	KeyID   string   `json:"kid"`
	X5C     []string `json:"x5c"`
}

// Parse decodes a SPIFFE bundle document (a JWK Set, SPIFFE Trust Domain and
// Bundle 4) for td. Keys that the specification requires a consumer to ignore are
// skipped and reported as warnings. A document that is not a JWK Set, or a key of a
// known use whose material is broken, is an error wrapping ErrInvalidBundle.
func Parse(td spiffeid.TrustDomain, data []byte) (*Bundle, []Warning, error) {
	var doc rawDocument
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, invalid(td, "not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, nil, invalid(td, "trailing data after the JSON object")
	}
	if doc.Keys == nil {
		return nil, nil, invalid(td, `member "keys" is missing or not an array`)
	}
	b := New(td)
	var err error
	if b.Sequence, b.HasSequence, err = parseUint(doc.Sequence); err != nil {
		return nil, nil, invalid(td, "spiffe_sequence: %v", err)
	}
	hint, hasHint, err := parseUint(doc.RefreshHint)
	if err != nil {
		return nil, nil, invalid(td, "spiffe_refresh_hint: %v", err)
	}
	if hasHint {
		if hint > uint64(math.MaxInt64/int64(time.Second)) {
			return nil, nil, invalid(td, "spiffe_refresh_hint: %d seconds is too large", hint)
		}
		b.RefreshHint = time.Duration(hint) * time.Second
	}
	var warnings []Warning
	seen := map[string]bool{}
	for i, raw := range *doc.Keys {
		w, err := addKey(b, i, raw, seen)
		if err != nil {
			return nil, nil, invalid(td, "%v", err)
		}
		if w != nil {
			warnings = append(warnings, *w)
		}
	}
	b.Normalize()
	return b, warnings, nil
}

func invalid(td spiffeid.TrustDomain, format string, args ...any) error {
	return fmt.Errorf("bundle: %w for %s: %s", ErrInvalidBundle, td.Name(),
		fmt.Sprintf(format, args...))
}

// parseUint reads an optional JSON integer that must fit 64 unsigned bits
// (SPIFFE Trust Domain and Bundle 4.1.1 and 4.1.2).
func parseUint(raw json.RawMessage) (uint64, bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, nil
	}
	var n json.Number
	// json.Number also accepts a quoted string, which the specification does not.
	if raw[0] == '"' {
		return 0, false, fmt.Errorf("%s is a string, expected an integer", raw)
	}
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, false, fmt.Errorf("%s is not a number", raw)
	}
	v, err := strconv.ParseUint(n.String(), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s is not an unsigned 64-bit integer", n)
	}
	return v, true, nil
}

// addKey adds the key at index i to b, or returns a warning when the key must be
// ignored (SPIFFE Trust Domain and Bundle 4.1.3, X509-SVID 6.2, JWT-SVID 6.2).
func addKey(b *Bundle, i int, raw json.RawMessage, seen map[string]bool) (*Warning, error) {
	var hdr rawKeyHeader
	if err := json.Unmarshal(raw, &hdr); err != nil {
		return nil, fmt.Errorf("key %d is not a JSON object with string members: %v", i, err)
	}
	skip := func(reason string) (*Warning, error) {
		return &Warning{Index: i, KeyID: hdr.KeyID, Use: hdr.Use, Reason: reason}, nil
	}
	switch {
	case hdr.Use == "":
		return skip(`missing "use"`)
	case hdr.Use != UseX509SVID && hdr.Use != UseJWTSVID && hdr.Use != UseWITSVID:
		return skip(fmt.Sprintf("unknown use %q", hdr.Use))
	case hdr.KeyType == "":
		return skip(`missing "kty"`)
	case !knownKeyTypes[hdr.KeyType]:
		return skip(fmt.Sprintf("unknown kty %q", hdr.KeyType))
	case hdr.Use == UseX509SVID && len(hdr.X5C) == 0:
		return skip(`x509-svid key without "x5c"`)
	case hdr.Use != UseX509SVID && hdr.KeyID == "":
		return skip(fmt.Sprintf(`%s key without "kid"`, hdr.Use))
	}
	if hdr.Use == UseX509SVID && len(hdr.X5C) > 1 {
		// X509-SVID 6.2: certificates after the first are ignored. go-jose would check
		// the whole chain, so parse the key with only the first one.
		raw = withFirstCertificate(raw)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("key %d (use %s): %v", i, hdr.Use, err)
	}
	if !jwk.IsPublic() {
		return nil, fmt.Errorf("key %d (use %s) contains private key material; "+
			"a bundle must hold public keys only", i, hdr.Use)
	}
	switch hdr.Use {
	case UseX509SVID:
		if len(jwk.Certificates) == 0 {
			return nil, fmt.Errorf("key %d: x5c contains no certificate", i)
		}
		b.X509Authorities = append(b.X509Authorities, jwk.Certificates[0])
	case UseJWTSVID, UseWITSVID:
		name := hdr.Use + "/" + hdr.KeyID
		if seen[name] {
			return nil, fmt.Errorf("key %d: duplicate kid %q for use %s", i, hdr.KeyID, hdr.Use)
		}
		seen[name] = true
		key := JWTAuthority{KeyID: hdr.KeyID, PublicKey: jwk.Key}
		if hdr.Use == UseJWTSVID {
			b.JWTAuthorities = append(b.JWTAuthorities, key)
		} else {
			b.WITAuthorities = append(b.WITAuthorities, key)
		}
	}
	return nil, nil
}

func withFirstCertificate(raw json.RawMessage) json.RawMessage {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return raw
	}
	var chain []json.RawMessage
	if err := json.Unmarshal(members["x5c"], &chain); err != nil || len(chain) == 0 {
		return raw
	}
	members["x5c"], _ = json.Marshal(chain[:1])
	out, err := json.Marshal(members)
	if err != nil {
		return raw
	}
	return out
}
