package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/bundle"
)

// signCompact signs header and payload, both taken as they are, with key for
// alg, and returns the compact serialization. It builds tokens that go-jose
// would not produce, such as repeated header parameters.
func signCompact(t testing.TB, alg string, key crypto.Signer, header, payload string) string {
	t.Helper()
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(payload))
	algorithm := jwsAlgorithms[alg]
	require.NotNil(t, algorithm, "alg %s", alg)
	hasher := algorithm.hash.New()
	hasher.Write([]byte(input))
	digest := hasher.Sum(nil)
	var signature []byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest)
		require.NoError(t, err)
		size := (k.Curve.Params().BitSize + 7) / 8
		signature = make([]byte, 2*size)
		r.FillBytes(signature[:size])
		s.FillBytes(signature[size:])
	case *rsa.PrivateKey:
		var err error
		if algorithm.pss {
			signature, err = rsa.SignPSS(rand.Reader, k, algorithm.hash, digest,
				&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			signature, err = rsa.SignPKCS1v15(rand.Reader, k, algorithm.hash, digest)
		}
		require.NoError(t, err)
	default:
		t.Fatalf("key type %T", key)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(signature)
}

// claimsJSON returns valid claims for sub as JSON text.
func claimsJSON(t testing.TB, sub string, now time.Time) string {
	t.Helper()
	raw, err := json.Marshal(claims(sub, now))
	require.NoError(t, err)
	return string(raw)
}

func TestVerifyJWTSVIDRejectsMalformed(t *testing.T) {
	f := newFixture(t)
	id := f.orgB.id("/svc")
	payload := claimsJSON(t, id, f.now)
	header := `{"alg":"ES256","kid":"` + f.orgB.kid + `","typ":"JWT"}`
	valid := signCompact(t, "ES256", f.orgB.jwtKey, header, payload)
	parts := strings.Split(valid, ".")
	signWith := func(header string) string {
		return signCompact(t, "ES256", f.orgB.jwtKey, header, payload)
	}
	signClaims := func(payload string) string {
		return signCompact(t, "ES256", f.orgB.jwtKey, header, payload)
	}
	tests := []struct {
		name     string
		token    string
		code     string
		fragment string
	}{
		{"two segments", parts[0] + "." + parts[1], CodeMalformed, "2 parts"},
		{"four segments", valid + ".e30", CodeMalformed, "4 parts"},
		{"five segments of a JWE", "a.b.c.d.e", CodeMalformed, "5 parts"},
		{"empty token", "", CodeMalformed, "1 parts"},
		{"standard base64 alphabet", parts[0] + "." + parts[1] + "+/." + parts[2],
			CodeMalformed, "base64url alphabet"},
		{"base64 padding", parts[0] + "==." + parts[1] + "." + parts[2], CodeMalformed,
			"base64url alphabet"},
		{"line break in segment", parts[0] + "." + parts[1][:4] + "\n" + parts[1][4:] +
			"." + parts[2], CodeMalformed, "base64url alphabet"},
		{"impossible base64 length", parts[0] + "." + parts[1] +
			strings.Repeat("A", (5-len(parts[1])%4)%4) + "." + parts[2], CodeMalformed,
			"payload segment is not valid base64url"},
		{"non-zero trailing bits", parts[0] + "." + parts[1] + "." +
			flipTrailingBits(parts[2]), CodeMalformed,
			"signature segment is not valid base64url"},
		{"empty signature", parts[0] + "." + parts[1] + ".", CodeMalformed,
			"empty signature"},
		{"oversized token", parts[0] + "." + strings.Repeat("A", MaxTokenSize) + "." +
			parts[2], CodeMalformed, "over the limit of 16384 bytes"},
		{"header not JSON", signWith(`alg=ES256`), CodeMalformed, "header is not valid JSON"},
		{"header truncated", signWith(`{"alg":"ES256"`), CodeMalformed,
			"header is not valid JSON: it ends after 14 bytes"},
		{"header an array", signWith(`["ES256"]`), CodeMalformed, "not a JSON object"},
		{"header with trailing data", signWith(header + `{}`), CodeMalformed,
			"data after the JSON value"},
		{"header without alg", signWith(`{"kid":"` + f.orgB.kid + `"}`), CodeMalformed,
			`no "alg"`},
		{"alg repeated", signWith(`{"alg":"ES256","alg":"none"}`), CodeMalformed,
			`"alg" appears twice`},
		{"alg not a string", signWith(`{"alg":256}`), CodeMalformed, "not a string"},
		{"alg in lower case", signWith(`{"alg":"es256"}`), CodeMalformed, `alg "es256"`},
		{"alg none", signWith(`{"alg":"none"}`), CodeMalformed, `alg "none"`},
		{"alg HS256", signWith(`{"alg":"HS256"}`), CodeMalformed, `alg "HS256"`},
		{"alg EdDSA", signWith(`{"alg":"EdDSA"}`), CodeMalformed, `alg "EdDSA"`},
		{"header name in other case", signWith(`{"ALG":"ES256"}`), CodeMalformed,
			`"ALG" is not allowed`},
		{"crit header", signWith(`{"alg":"ES256","crit":["exp"]}`), CodeMalformed,
			`"crit" is not allowed`},
		{"jwk header", signWith(`{"alg":"ES256","jwk":{}}`), CodeMalformed,
			`"jwk" is not allowed`},
		{"x5c header", signWith(`{"alg":"ES256","x5c":[]}`), CodeMalformed,
			`"x5c" is not allowed`},
		{"kid not a string", signWith(`{"alg":"ES256","kid":7}`), CodeMalformed,
			"not a string"},
		{"typ in lower case", signWith(`{"alg":"ES256","typ":"jwt"}`), CodeMalformed,
			`"typ" is "jwt"`},
		{"typ null", signWith(`{"alg":"ES256","typ":null}`), CodeMalformed,
			"not a string"},
		{"claims not an object", signClaims(`["spiffe://org-b.test/svc"]`), CodeMalformed,
			"not a JSON object"},
		{"claims not JSON", signClaims(`sub=spiffe://org-b.test/svc`), CodeMalformed,
			"not a JSON object"},
		{"claim repeated", signClaims(strings.TrimSuffix(payload, "}") +
			`,"sub":"spiffe://org-b.test/admin"}`), CodeMalformed, "repeat a claim name"},
		{"claim repeated with escape", signClaims(strings.TrimSuffix(payload, "}") +
			`,"\u0073ub":"spiffe://org-b.test/admin"}`), CodeMalformed,
			"repeat a claim name"},
		{"unknown kid", signWith(`{"alg":"ES256","kid":"other"}`), CodeUnknownKeyID,
			`kid "other"`},
		{"tampered payload", parts[0] + "." +
			base64.RawURLEncoding.EncodeToString([]byte(claimsJSON(t,
				f.orgB.id("/admin"), f.now))) + "." + parts[2], CodeBadSignature,
			"does not verify"},
		{"signature of wrong length", parts[0] + "." + parts[1] + "." + parts[2][:40],
			CodeBadSignature, "an ES256 signature has 64 bytes, this one 30"},
		{"ES384 header on a P-256 key",
			signCompact(t, "ES256", f.orgB.jwtKey, `{"alg":"ES384","kid":"`+f.orgB.kid+`"}`,
				payload), CodeBadSignature, "alg ES384 cannot be verified with this key " +
				"(EC P-256)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result, err := f.verifier.VerifyJWTSVID(tt.token, []string{"billing"})
			require.Nil(t, result)
			requireCode(t, err, tt.code, tt.fragment)
		})
	}
	t.Run("valid token of the same helper", func(t *testing.T) {
		result, err := f.verifier.VerifyJWTSVID(valid, []string{"billing"})
		require.NoError(t, err)
		require.Equal(t, id, result.SPIFFEID)
	})
}

// flipTrailingBits changes the unused low bits of the last character of an
// unpadded base64url segment whose length leaves some, which a lenient decoder
// ignores.
func flipTrailingBits(segment string) string {
	last := segment[len(segment)-1]
	index := strings.IndexByte(base64URLAlphabet, last)
	return segment[:len(segment)-1] + string(base64URLAlphabet[index^1])
}

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestVerifyJWTSVIDHeaderForms(t *testing.T) {
	f := newFixture(t)
	id := f.orgB.id("/svc")
	payload := claimsJSON(t, id, f.now)
	kid := f.orgB.kid
	for name, header := range map[string]string{
		"typ JWT":          `{"alg":"ES256","kid":"` + kid + `","typ":"JWT"}`,
		"typ JOSE":         `{"typ":"JOSE","kid":"` + kid + `","alg":"ES256"}`,
		"no typ":           `{"alg":"ES256","kid":"` + kid + `"}`,
		"white space":      "{ \"alg\" :\t\"ES256\" ,\n\"kid\":\"" + kid + "\"\r}",
		"escaped kid":      `{"alg":"ES256","kid":"` + jsonEscapeAll(kid) + `"}`,
		"no kid":           `{"alg":"ES256"}`,
		"empty kid":        `{"alg":"ES256","kid":""}`,
		"escaped alg name": `{"\u0061lg":"ES256","kid":"` + kid + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			token := signCompact(t, "ES256", f.orgB.jwtKey, header, payload)
			result, err := f.verifier.VerifyJWTSVID(token, []string{"billing"})
			require.NoError(t, err)
			require.Equal(t, id, result.SPIFFEID)
			require.Equal(t, kid, result.KeyID)
		})
	}
}

// jsonEscapeAll writes every character of s as a \u escape.
func jsonEscapeAll(s string) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

func TestVerifyJWTSVIDCurvesAndRSA(t *testing.T) {
	f := newFixture(t)
	id := f.orgB.id("/svc")
	payload := claimsJSON(t, id, f.now)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	f.trust.Local.JWTAuthorities = append(f.trust.Local.JWTAuthorities,
		bundle.JWTAuthority{KeyID: "p384", PublicKey: &p384.PublicKey},
		bundle.JWTAuthority{KeyID: "p521", PublicKey: &p521.PublicKey},
		bundle.JWTAuthority{KeyID: "rsa", PublicKey: &rsaKey.PublicKey})
	tests := []struct {
		alg  string
		kid  string
		key  crypto.Signer
		code string
	}{
		{"ES384", "p384", p384, ""},
		{"ES512", "p521", p521, ""},
		{"RS256", "rsa", rsaKey, ""},
		{"RS384", "rsa", rsaKey, ""},
		{"RS512", "rsa", rsaKey, ""},
		{"PS256", "rsa", rsaKey, ""},
		{"PS384", "rsa", rsaKey, ""},
		{"PS512", "rsa", rsaKey, ""},
		{"ES512", "p384", p521, CodeBadSignature},
		{"ES384", "p521", p384, CodeBadSignature},
		{"ES256", "rsa", f.orgB.jwtKey.(*ecdsa.PrivateKey), CodeBadSignature},
		{"RS256", f.orgB.kid, rsaKey, CodeBadSignature},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s with key %s", tt.alg, tt.kid), func(t *testing.T) {
			token := signCompact(t, tt.alg, tt.key,
				`{"alg":"`+tt.alg+`","kid":"`+tt.kid+`"}`, payload)
			result, err := f.verifier.VerifyJWTSVID(token, []string{"billing"})
			if tt.code != "" {
				requireCode(t, err, tt.code, "cannot be verified with this key")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.kid, result.KeyID)
		})
	}
}

// TestVerifyJWTSVIDPSSSaltLength checks RFC 7518 3.5: a PS256 signature whose
// salt is not as long as the hash output is rejected, although go-jose 4.1.5,
// which accepts any salt length, verifies it.
func TestVerifyJWTSVIDPSSSaltLength(t *testing.T) {
	f := newFixture(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	f.trust.Local.JWTAuthorities = append(f.trust.Local.JWTAuthorities,
		bundle.JWTAuthority{KeyID: "rsa", PublicKey: &rsaKey.PublicKey})
	input := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"PS256","kid":"rsa"}`)) +
		"." + base64.RawURLEncoding.EncodeToString([]byte(claimsJSON(t,
		f.orgB.id("/svc"), f.now)))
	digest := crypto.SHA256.New()
	digest.Write([]byte(input))
	signature, err := rsa.SignPSS(rand.Reader, rsaKey, crypto.SHA256, digest.Sum(nil),
		&rsa.PSSOptions{SaltLength: 20})
	require.NoError(t, err)
	token := input + "." + base64.RawURLEncoding.EncodeToString(signature)

	parsed, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.PS256})
	require.NoError(t, err)
	_, err = parsed.Verify(&rsaKey.PublicKey)
	require.NoError(t, err, "go-jose accepts the short salt")

	_, err = f.verifier.VerifyJWTSVID(token, []string{"billing"})
	requireCode(t, err, CodeBadSignature, "does not verify")
}

// TestParseCompactJWSMatchesGoJOSE checks the parser against go-jose on tokens
// that go-jose signs: same alg, kid and payload.
func TestParseCompactJWSMatchesGoJOSE(t *testing.T) {
	f := newFixture(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	c := claims(f.orgB.id("/svc"), f.now)
	c["nested"] = map[string]any{"list": []any{1, "two", nil, true}, "text": "a\"b<c>"}
	for _, spec := range []tokenSpec{
		{key: f.orgB.jwtKey, kid: f.orgB.kid, claims: c},
		{key: f.orgB.jwtKey, claims: c},
		{alg: jose.PS512, key: rsaKey, kid: "rsa-1", claims: c},
		{alg: jose.RS256, key: rsaKey, kid: "k\u00e9y \"quoted\"", claims: c},
	} {
		token := mint(t, spec)
		parsed, jwsErr := parseCompactJWS(token)
		require.Nil(t, jwsErr)
		reference, err := jose.ParseSignedCompact(token, allowedJOSEAlgorithms)
		require.NoError(t, err)
		header := reference.Signatures[0].Header
		require.Equal(t, string(header.Algorithm), parsed.alg.name)
		require.Equal(t, header.KeyID, parsed.keyID)
		require.Equal(t, reference.UnsafePayloadWithoutVerification(), parsed.payload)
		signer, ok := spec.key.(crypto.Signer)
		require.True(t, ok)
		require.NoError(t, parsed.verify(signer.Public()))
	}
}

var allowedJOSEAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512,
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}

// FuzzParseCompactJWS checks that the parser never panics, and that go-jose
// 4.1.5 also parses every token it accepts, with the same alg, kid and payload.
// The parser is stricter than go-jose, so the converse does not hold.
func FuzzParseCompactJWS(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(f, err)
	now := time.Unix(1_700_000_000, 0)
	payload := claimsJSON(f, "spiffe://org-b.test/svc", now)
	for _, header := range []string{`{"alg":"ES256","kid":"k1","typ":"JWT"}`,
		`{"alg":"ES256"}`, `{"alg":"none"}`, `{"alg":"ES256","alg":"ES256"}`,
		`{"alg":"ES256","kid":"\u006b1"}`, `{"alg":"RS256","x5c":[]}`} {
		f.Add(signCompact(f, "ES256", key, header, payload))
	}
	f.Add("a.b.c")
	f.Add("e30.e30.AA")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		parsed, jwsErr := parseCompactJWS(token)
		if jwsErr != nil {
			require.Equal(t, CodeMalformed, jwsErr.Code)
			return
		}
		reference, err := jose.ParseSignedCompact(token, allowedJOSEAlgorithms)
		require.NoError(t, err, "go-jose rejects a token the parser accepts")
		header := reference.Signatures[0].Header
		require.Equal(t, string(header.Algorithm), parsed.alg.name)
		require.Equal(t, header.KeyID, parsed.keyID)
		require.Equal(t, reference.UnsafePayloadWithoutVerification(), parsed.payload)
		// Checking with the seeds' key must not panic; the outcome depends on
		// the input.
		_ = parsed.verify(&key.PublicKey)
	})
}
