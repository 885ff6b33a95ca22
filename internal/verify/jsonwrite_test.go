package verify

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendResponseMatchesEncodingJSON(t *testing.T) {
	tests := map[string]Response{
		"empty":   {},
		"invalid": {Error: &ErrorBody{Code: CodeMalformed, Message: `token "x" <bad> & worse`}},
		"valid": {Valid: true, SPIFFEID: "spiffe://org-a.test/agents/planner",
			TrustDomain: "org-a.test", ExpiresAt: "2026-01-02T03:04:05Z",
			IssuedAt: "2026-01-02T03:00:00Z", Audience: []string{"billing", "réports"},
			KeyID: "key-1"},
		"empty audience list": {Valid: true, Audience: []string{}},
		"claims map": {Valid: true, Claims: map[string]any{"sub": "spiffe://x.test/y",
			"n": 1.5, "list": []any{"a", nil, true}, "obj": map[string]any{"k": "<v>"}}},
		"escapes": {Valid: true, SPIFFEID: "a\"b\\c\n\r\t\b\f\x00\x1f\u2028\u2029\xffé😀",
			KeyID: "<>&"},
	}
	for name, response := range tests {
		t.Run(name, func(t *testing.T) {
			expected, err := json.Marshal(response)
			require.NoError(t, err)
			require.Equal(t, string(expected), string(appendResponse(nil, &response, nil)))
		})
	}
}

func TestAppendResponseRawClaims(t *testing.T) {
	raw := []byte(`{"sub":"spiffe://org-a.test/x", "aud":["billing"],"big":12345678901234567890}`)
	response := Response{Valid: true, SPIFFEID: "spiffe://org-a.test/x",
		Claims: map[string]any{"ignored": true}}
	encoded := appendResponse(nil, &response, raw)
	require.Contains(t, string(encoded), `"claims":`+string(raw))

	var decoded map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(encoded, &decoded))
	require.JSONEq(t, string(raw), string(decoded["claims"]))
	require.Equal(t, `true`, string(decoded["valid"]))
	require.Equal(t, `"spiffe://org-a.test/x"`, string(decoded["spiffe_id"]))
}

// FuzzAppendJSONString compares appendJSONString with json.Marshal of a string.
func FuzzAppendJSONString(f *testing.F) {
	for _, seed := range []string{"", "plain", "\"\\/", "<script>&", "\x00\x07\x1f\x7f",
		"\u2028\u2029", "\xff\xfe", "é😀", "\xed\xa0\x80"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		expected, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(expected), string(appendJSONString(nil, s)))
	})
}
