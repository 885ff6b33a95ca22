package bundle

import (
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

var tdB = spiffeid.RequireTrustDomainFromString("org-b.test")

func TestParseValidDocuments(t *testing.T) {
	ca := newCA(t, "org-b.test")
	ca2 := newCA(t, "org-b.test")
	jk := newJWTKey(t, "key-1")

	t.Run("full bundle with extras", func(t *testing.T) {
		// Trust Domain and Bundle 4: extra top-level members must not be required nor rejected.
		b, warnings, err := Parse(tdB, docJSON(t, map[string]any{
			"keys":                []any{x509Key(t, ca), jwtKey(t, jk)},
			"spiffe_sequence":     42,
			"spiffe_refresh_hint": 300,
			"extra":               map[string]any{"a": 1},
		}))
		require.NoError(t, err)
		require.Empty(t, warnings)
		require.Equal(t, tdB, b.TrustDomain)
		require.True(t, b.HasSequence)
		require.Equal(t, uint64(42), b.Sequence)
		require.Equal(t, 5*time.Minute, b.RefreshHint)
		require.Len(t, b.X509Authorities, 1)
		require.True(t, b.X509Authorities[0].Equal(ca))
		require.Len(t, b.JWTAuthorities, 1)
		require.Equal(t, "key-1", b.JWTAuthorities[0].KeyID)
	})

	t.Run("empty keys is legal", func(t *testing.T) {
		// Trust Domain and Bundle 4.1.3: [] is a legal, empty bundle.
		b, warnings, err := Parse(tdB, []byte(`{"keys":[]}`))
		require.NoError(t, err)
		require.Empty(t, warnings)
		require.False(t, b.HasSequence)
		require.Zero(t, b.RefreshHint)
		require.Empty(t, b.X509Authorities)
		require.Empty(t, b.JWTAuthorities)
	})

	t.Run("sequence at 64-bit maximum", func(t *testing.T) {
		// Trust Domain and Bundle 4.1.1: the sequence is held in 64 bits.
		b, _, err := Parse(tdB, []byte(`{"keys":[],"spiffe_sequence":18446744073709551615}`))
		require.NoError(t, err)
		require.Equal(t, uint64(18446744073709551615), b.Sequence)
	})

	t.Run("extra certificates in x5c ignored", func(t *testing.T) {
		// X509-SVID 6.2: certificates after the first in x5c are ignored.
		key := x509Key(t, ca)
		key["x5c"] = []any{b64(ca), b64(ca2)}
		b, warnings, err := Parse(tdB, docJSON(t, map[string]any{"keys": []any{key}}))
		require.NoError(t, err)
		require.Empty(t, warnings)
		require.Len(t, b.X509Authorities, 1)
		require.True(t, b.X509Authorities[0].Equal(ca))
	})
}

func TestParseSkipsUnusableKeys(t *testing.T) {
	ca := newCA(t, "org-b.test")
	jk := newJWTKey(t, "good")

	edit := func(base map[string]any, change func(map[string]any)) map[string]any {
		out := map[string]any{}
		for k, v := range base {
			out[k] = v
		}
		change(out)
		return out
	}
	cases := []struct {
		name   string
		key    map[string]any
		reason string
	}{
		{"missing use", edit(jwtKey(t, jk), func(k map[string]any) { delete(k, "use") }),
			`missing "use"`},
		{"unknown use", edit(jwtKey(t, jk), func(k map[string]any) { k["use"] = "sig" }),
			`unknown use "sig"`},
		{"use is case-sensitive", edit(x509Key(t, ca), func(k map[string]any) { k["use"] = "X509-SVID" }),
			`unknown use "X509-SVID"`},
		{"missing kty", edit(jwtKey(t, jk), func(k map[string]any) { delete(k, "kty") }),
			`missing "kty"`},
		{"unknown kty", edit(jwtKey(t, jk), func(k map[string]any) { k["kty"] = "XYZ" }),
			`unknown kty "XYZ"`},
		{"x509 without x5c", edit(x509Key(t, ca), func(k map[string]any) { delete(k, "x5c") }),
			`x509-svid key without "x5c"`},
		{"x509 with empty x5c", edit(x509Key(t, ca), func(k map[string]any) { k["x5c"] = []any{} }),
			`x509-svid key without "x5c"`},
		{"jwt without kid", edit(jwtKey(t, jk), func(k map[string]any) { delete(k, "kid") }),
			`jwt-svid key without "kid"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Trust Domain and Bundle 4.1.3, X509-SVID 6.2, JWT-SVID 6.2: the unusable key is skipped and the rest still counts.
			doc := docJSON(t, map[string]any{
				"keys":            []any{tc.key, x509Key(t, ca), jwtKey(t, jk)},
				"spiffe_sequence": 3,
			})
			b, warnings, err := Parse(tdB, doc)
			require.NoError(t, err)
			require.Len(t, warnings, 1)
			require.Equal(t, 0, warnings[0].Index)
			require.Equal(t, tc.reason, warnings[0].Reason)
			require.Len(t, b.X509Authorities, 1)
			require.Len(t, b.JWTAuthorities, 1)
			require.Equal(t, uint64(3), b.Sequence)
		})
	}
}

func TestParseRejectsMalformedDocuments(t *testing.T) {
	ca := newCA(t, "org-b.test")
	jk := newJWTKey(t, "dup")
	badCert := x509Key(t, ca)
	badCert["x5c"] = []any{"bm90IGEgY2VydA=="}
	cases := []struct {
		name string
		doc  string
		want string
	}{
		{"not JSON", `{"keys": [`, "not a JSON object"},
		{"JSON array", `[]`, "not a JSON object"},
		{"trailing data", `{"keys":[]} {}`, "trailing data"},
		{"keys missing", `{"spiffe_sequence": 1}`, `"keys" is missing`},
		{"keys not array", `{"keys": {}}`, "not a JSON object"},
		{"keys null", `{"keys": null}`, `"keys" is missing`},
		{"negative sequence", `{"keys":[],"spiffe_sequence":-1}`, "spiffe_sequence"},
		{"fractional sequence", `{"keys":[],"spiffe_sequence":1.5}`, "spiffe_sequence"},
		{"sequence over 64 bits", `{"keys":[],"spiffe_sequence":18446744073709551616}`,
			"spiffe_sequence"},
		{"string sequence", `{"keys":[],"spiffe_sequence":"7"}`, "spiffe_sequence"},
		{"string refresh hint", `{"keys":[],"spiffe_refresh_hint":"5m"}`, "spiffe_refresh_hint"},
		{"key not object", `{"keys":[42]}`, "key 0 is not a JSON object"},
		{"bad certificate", string(docJSON(t, map[string]any{"keys": []any{badCert}})), "key 0"},
		{"duplicate kid", string(docJSON(t, map[string]any{
			"keys": []any{jwtKey(t, jk), jwtKey(t, newJWTKey(t, "dup"))}})), `duplicate kid "dup"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, _, err := Parse(tdB, []byte(tc.doc))
			require.ErrorIs(t, err, ErrInvalidBundle)
			require.ErrorContains(t, err, "org-b.test")
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, b)
		})
	}
}

func TestParseRejectsPrivateKey(t *testing.T) {
	doc := `{"keys":[{"kty":"EC","use":"jwt-svid","kid":"k","crv":"P-256",
		"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
		"y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
		"d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}]}`
	_, _, err := Parse(tdB, []byte(doc))
	require.ErrorIs(t, err, ErrInvalidBundle)
	require.ErrorContains(t, err, "private key material")
}
