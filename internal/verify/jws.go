package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	_ "crypto/sha256" // registers SHA-256 for crypto.Hash.New
	_ "crypto/sha512" // registers SHA-384 and SHA-512
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
)

// MaxTokenSize is the longest JWT-SVID accepted, in bytes of its compact
// serialization. bundlex's built-in authority mints tokens of a few hundred
// bytes, so 16 KiB leaves room for many custom claims while bounding the work
// that one token can cause.
const MaxTokenSize = 16 << 10

// jwsAlgorithm is one alg value of JWT-SVID 2.1, which allows exactly the
// ECDSA, RSASSA-PKCS1-v1_5 and RSASSA-PSS algorithms of RFC 7518 3.1.
type jwsAlgorithm struct {
	name string
	hash crypto.Hash
	// curve is the curve of an ECDSA algorithm (RFC 7518 3.4), nil for RSA.
	curve elliptic.Curve
	// pss marks the RSASSA-PSS algorithms (RFC 7518 3.5).
	pss bool
}

// jwsAlgorithms are the allowed alg values. Validators must reject any other,
// which includes "none" and the HMAC algorithms.
var jwsAlgorithms = map[string]*jwsAlgorithm{
	"ES256": {name: "ES256", hash: crypto.SHA256, curve: elliptic.P256()},
	"ES384": {name: "ES384", hash: crypto.SHA384, curve: elliptic.P384()},
	"ES512": {name: "ES512", hash: crypto.SHA512, curve: elliptic.P521()},
	"RS256": {name: "RS256", hash: crypto.SHA256},
	"RS384": {name: "RS384", hash: crypto.SHA384},
	"RS512": {name: "RS512", hash: crypto.SHA512},
	"PS256": {name: "PS256", hash: crypto.SHA256, pss: true},
	"PS384": {name: "PS384", hash: crypto.SHA384, pss: true},
	"PS512": {name: "PS512", hash: crypto.SHA512, pss: true},
}

// compactJWS is a JWS in compact serialization (RFC 7515 7.1) whose header
// follows JWT-SVID 2 and whose signature has not been checked.
type compactJWS struct {
	alg *jwsAlgorithm
	// keyID is the kid header, "" when absent.
	keyID string
	// signingInput is the first two segments with the dot between them, the
	// bytes that the signature covers.
	signingInput []byte
	payload      []byte
	signature    []byte
}

// base64URL decodes the unpadded base64url of RFC 7515 2. Strict rejects
// non-zero trailing bits, so that each segment has one encoding only.
var base64URL = base64.RawURLEncoding.Strict()

// isBase64URL marks the bytes of the base64url alphabet. The decoder skips CR
// and LF, which a compact JWS must not contain, so the bytes are checked first.
var isBase64URL = func() (table [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		table[c] = true
	}
	return table
}()

// parseCompactJWS splits token into its three segments, decodes them and
// checks the header of JWT-SVID 2: alg is an allowed algorithm, typ is JWT or
// JOSE when present, and no other header parameter appears. Every failure is a
// malformed *Error.
func parseCompactJWS(token string) (*compactJWS, *Error) {
	if len(token) > MaxTokenSize {
		return nil, malformed("", "token is %d bytes long, over the limit of %d bytes",
			len(token), MaxTokenSize)
	}
	var dots [2]int
	count := 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		if c == '.' {
			if count < len(dots) {
				dots[count] = i
			}
			count++
			continue
		}
		if !isBase64URL[c] {
			return nil, malformed("", "token is not a JWS in compact serialization: byte "+
				"%d is %q, outside the base64url alphabet", i, c)
		}
	}
	if count != 2 {
		return nil, malformed("", "token is not a JWS in compact serialization: it has %d "+
			"parts separated by dots, expected 3 (header, payload, signature)", count+1)
	}
	header, payload, signature := token[:dots[0]], token[dots[0]+1:dots[1]],
		token[dots[1]+1:]
	// One buffer holds the token's bytes and then the three decoded segments.
	raw := make([]byte, len(token)+base64URL.DecodedLen(len(header))+
		base64URL.DecodedLen(len(payload))+base64URL.DecodedLen(len(signature)))
	copy(raw, token)
	encoded, rest := raw[:len(token):len(token)], raw[len(token):]
	segments := [3][]byte{}
	for i, segment := range [3][]byte{encoded[:dots[0]], encoded[dots[0]+1 : dots[1]],
		encoded[dots[1]+1:]} {
		n, err := base64URL.Decode(rest, segment)
		if err != nil {
			return nil, malformed("", "token %s segment is not valid base64url (%v)",
				[3]string{"header", "payload", "signature"}[i], err)
		}
		segments[i], rest = rest[:n:n], rest[n:]
	}
	jws := &compactJWS{signingInput: encoded[:dots[1]], payload: segments[1],
		signature: segments[2]}
	if err := jws.readHeader(segments[0]); err != nil {
		return nil, err
	}
	// Checked after the header, so that alg "none", whose signature is empty,
	// is reported as such.
	if signature == "" {
		return nil, malformed("", "token has an empty signature segment")
	}
	return jws, nil
}

// readHeader applies JWT-SVID 2: alg is required, kid optional, typ optional
// and JWT or JOSE, and nothing else may appear. Rejecting jwk, x5c, jku and the
// like keeps a token from naming its own verification key, and rejecting crit
// keeps out extensions this code does not implement (RFC 7515 4.1.11).
func (j *compactJWS) readHeader(header []byte) *Error {
	// The reader stops at the first unexpected byte, which in broken JSON can
	// look like a value of the wrong type, so its errors first rule that out.
	readerError := func(format string, args ...any) *Error {
		if problem := describeInvalidJSON(header); problem != "" {
			return malformed("", "token header is not valid JSON: %s", problem)
		}
		return malformed("", format, args...)
	}
	r := newJSONReader(header)
	if err := r.beginObject(); err != nil {
		return readerError("token header is not a JSON object (%v)", err)
	}
	seen := map[string]bool{}
	for {
		name, ok, err := r.nextMember()
		if err != nil {
			return readerError("token header is not a JSON object (%v)", err)
		}
		if !ok {
			break
		}
		if name != "alg" && name != "kid" && name != "typ" {
			return malformed("", "token header %q is not allowed; a JWT-SVID header "+
				"holds only alg, kid and typ", name)
		}
		if seen[name] {
			return malformed("", "token header %q appears twice", name)
		}
		seen[name] = true
		value, err := r.readString()
		if err != nil {
			return readerError("token header %q is not a string (%v)", name, err)
		}
		switch name {
		case "alg":
			if j.alg = jwsAlgorithms[value]; j.alg == nil {
				return malformed("", "token alg %q is not allowed; a JWT-SVID is signed "+
					"with ES256, ES384, ES512, RS256, RS384, RS512, PS256, PS384 or PS512",
					value)
			}
		case "kid":
			j.keyID = value
		case "typ":
			if value != "JWT" && value != "JOSE" {
				return malformed("", `token header "typ" is %q; a JWT-SVID has typ JWT, `+
					"JOSE or none", value)
			}
		}
	}
	if j.alg == nil {
		return malformed("", `token header has no "alg"; a JWT-SVID names its signature `+
			"algorithm")
	}
	return nil
}

// errSignatureMismatch means that the key does not verify the signature, as
// opposed to a key that cannot be used with the token's alg.
var errSignatureMismatch = errors.New("signature does not verify")

// verify checks the signature with key. It returns errSignatureMismatch when
// the signature is wrong, and another error when key does not fit alg.
func (j *compactJWS) verify(key crypto.PublicKey) error {
	hasher := j.alg.hash.New()
	_, _ = hasher.Write(j.signingInput)
	digest := hasher.Sum(nil)
	switch key := key.(type) {
	case *ecdsa.PublicKey:
		if key == nil || key.Curve == nil || j.alg.curve == nil || key.Curve != j.alg.curve {
			return fmt.Errorf("alg %s cannot be verified with this key (%s)", j.alg.name,
				describeKey(key))
		}
		// RFC 7518 3.4: the signature is R and S, each as long as the curve's
		// order in bytes.
		size := (key.Curve.Params().BitSize + 7) / 8
		if len(j.signature) != 2*size {
			return fmt.Errorf("%w: an %s signature has %d bytes, this one %d",
				errSignatureMismatch, j.alg.name, 2*size, len(j.signature))
		}
		r := new(big.Int).SetBytes(j.signature[:size])
		s := new(big.Int).SetBytes(j.signature[size:])
		if !ecdsa.Verify(key, digest, r, s) {
			return errSignatureMismatch
		}
		return nil
	case *rsa.PublicKey:
		if key == nil || key.N == nil || j.alg.curve != nil {
			return fmt.Errorf("alg %s cannot be verified with this key (%s)", j.alg.name,
				describeKey(key))
		}
		var err error
		if j.alg.pss {
			// RFC 7518 3.5: the salt is as long as the hash output.
			err = rsa.VerifyPSS(key, j.alg.hash, digest, j.signature,
				&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			err = rsa.VerifyPKCS1v15(key, j.alg.hash, digest, j.signature)
		}
		if err != nil {
			return errSignatureMismatch
		}
		return nil
	default:
		return fmt.Errorf("alg %s cannot be verified with a key of type %T", j.alg.name, key)
	}
}
