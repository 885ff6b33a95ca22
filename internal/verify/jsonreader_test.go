package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeJWTSVIDRequestAccepts(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		token    string
		audience Audience
	}{
		{"audience array", `{"token":"t","audience":["a","b"]}`, "t", Audience{"a", "b"}},
		{"audience string", `{"audience":"a","token":"t"}`, "t", Audience{"a"}},
		{"empty audience array", `{"token":"t","audience":[]}`, "t", Audience{}},
		{"white space everywhere", " {\n\t\"token\" : \"t\" ,\r\n \"audience\" : [ \"a\" , " +
			"\"b\" ] } \n", "t", Audience{"a", "b"}},
		{"escapes", `{"token":"a\u002eb\\c","audience":["\u00e9\n"]}`, `a.b\c`,
			Audience{"\u00e9\n"}},
		{"null members", `{"token":null,"audience":null}`, "", nil},
		{"no members", `{}`, "", nil},
		{"invalid UTF-8 replaced", "{\"token\":\"a\xffb\"}", "a\ufffdb", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := decodeJWTSVIDRequest([]byte(tt.body))
			require.NoError(t, err)
			require.Equal(t, tt.token, req.Token)
			require.Equal(t, tt.audience, req.Audience)

			var reference JWTSVIDRequest
			require.NoError(t, decodeStrict([]byte(tt.body), &reference))
			require.Equal(t, reference, req, "same result as encoding/json")
		})
	}
}

func TestDecodeJWTSVIDRequestRejects(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		fragment string
	}{
		{"empty body", ``, "not valid JSON: it is empty"},
		{"white space only", " \n", "not valid JSON: it is empty"},
		{"array", `["t"]`, "expected a JSON object"},
		{"null body", `null`, "expected a JSON object"},
		{"truncated after name", `{"token":`, "not valid JSON: it ends after 9 bytes"},
		{"truncated in name", `{"tok`, "looks truncated"},
		{"truncated in array", `{"audience":["a",`, "looks truncated"},
		{"truncated literal", `{"token":nu`, "looks truncated"},
		{"only opening brace", `{`, "looks truncated"},
		{"unknown member", `{"token":"t","audiences":["a"]}`, `unknown member "audiences"`},
		{"member name in other case", `{"Token":"t"}`, `unknown member "Token"`},
		{"token repeated", `{"token":"t","token":"u"}`, `"token" appears twice`},
		{"audience repeated", `{"audience":"a","audience":"b"}`, `"audience" appears twice`},
		{"token a number", `{"token":7}`, `"token" must be a string`},
		{"audience a number", `{"audience":7}`,
			`"audience" must be a string or an array of strings: expected a string or an ` +
				"array at byte 13"},
		{"audience with a number", `{"audience":["a",7]}`, "expected a string at byte 18"},
		{"audience array unterminated", `{"audience":["a"`, "looks truncated"},
		{"missing colon", `{"token" "t"}`,
			`not valid JSON: invalid character '"' after object key at byte 10`},
		{"missing comma", `{"token":"t" "audience":"a"}`, "not valid JSON: invalid character"},
		{"trailing comma", `{"token":"t",}`, "not valid JSON: invalid character '}'"},
		{"unterminated string", `{"token":"t`, "looks truncated"},
		{"raw control character", "{\"token\":\"a\tb\"}", "not valid JSON: invalid character"},
		{"invalid escape", `{"token":"a\qb"}`, "not valid JSON: invalid character"},
		{"second object", `{"token":"t"} {}`, "data after the JSON value, at byte 15"},
		{"unclosed object", `{"token":"t"`, "looks truncated"},
		{"null name", `{null:"t"}`, "not valid JSON: invalid character 'n'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeJWTSVIDRequest([]byte(tt.body))
			requireRequestError(t, err, tt.fragment)
		})
	}
}

// decodeStrict decodes body with encoding/json, rejecting unknown members and
// data after the object: the reference that the strict decoders must agree with
// wherever they accept a body.
func decodeStrict(body []byte, dest any) error {
	decoder := json.NewDecoder(bytes.NewReader(body))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(dest); err != nil {
		return err
	}
	if decoder.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}

func TestDecodeX509SVIDRequest(t *testing.T) {
	for _, tt := range []struct {
		name  string
		body  string
		chain string
	}{
		{"chain", `{"chain_pem":"-----BEGIN"}`, "-----BEGIN"},
		{"escaped line breaks", `{"chain_pem":"a\nb\r\n"}`, "a\nb\r\n"},
		{"null chain", `{"chain_pem":null}`, ""},
		{"no members", ` {} `, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := decodeX509SVIDRequest([]byte(tt.body))
			require.NoError(t, err)
			require.Equal(t, tt.chain, req.ChainPEM)

			var reference X509SVIDRequest
			require.NoError(t, decodeStrict([]byte(tt.body), &reference))
			require.Equal(t, reference, req, "same result as encoding/json")
		})
	}
	for _, tt := range []struct {
		name     string
		body     string
		fragment string
	}{
		{"member name in other case", `{"Chain_PEM":"x"}`, `unknown member "Chain_PEM"`},
		{"chain repeated", `{"chain_pem":"x","chain_pem":"y"}`,
			`"chain_pem" appears twice`},
		{"chain an array", `{"chain_pem":["x"]}`, `"chain_pem" must be a string`},
		{"truncated", `{"chain_pem":"-----BEGIN`, "not valid JSON: it ends after 24 bytes"},
		{"second object", `{"chain_pem":"x"}{}`, "data after the JSON value, at byte 18"},
		{"string body", `"x"`, "expected a JSON object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeX509SVIDRequest([]byte(tt.body))
			requireRequestError(t, err, tt.fragment)
		})
	}
}

// FuzzDecodeX509SVIDRequest checks that every body the strict decoder accepts
// decodes to the same request with encoding/json.
func FuzzDecodeX509SVIDRequest(f *testing.F) {
	for _, seed := range []string{`{"chain_pem":"x"}`, `{"chain_pem":null}`, `{}`,
		`{"Chain_PEM":"x"}`, `{"chain_pem":"\u00e9\n"}`, "{\"chain_pem\":\"\xff\"}"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeX509SVIDRequest(body)
		if err != nil {
			require.Equal(t, CodeInvalidRequest, ErrorCode(err))
			return
		}
		var reference X509SVIDRequest
		require.NoError(t, decodeStrict(body, &reference),
			"encoding/json rejects a body the decoder accepts")
		require.Equal(t, reference, req)
	})
}

func requireRequestError(t *testing.T, err error, fragment string) {
	t.Helper()
	var verifyErr *Error
	require.ErrorAs(t, err, &verifyErr)
	require.Equal(t, CodeInvalidRequest, verifyErr.Code)
	require.Contains(t, verifyErr.Message, fragment)
}

// FuzzDecodeJWTSVIDRequest checks that every body the reflection-free decoder
// accepts decodes to the same request with encoding/json. The decoder is
// stricter (exact member names, no repeats), so the converse does not hold.
func FuzzDecodeJWTSVIDRequest(f *testing.F) {
	for _, seed := range []string{`{"token":"t","audience":["a","b"]}`,
		`{"audience":"a","token":"t"}`, `{"token":null}`, `{"token":"\u00e9\"\\"}`,
		"{\"token\":\"\xff\"}", `{"Token":"t"}`, `{"token":"t","token":"u"}`, `{}`,
		`{"audience":[]}`, ` { "token" : "t" } `} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeJWTSVIDRequest(body)
		if err != nil {
			require.Equal(t, CodeInvalidRequest, ErrorCode(err))
			return
		}
		var reference JWTSVIDRequest
		require.NoError(t, decodeStrict(body, &reference),
			"encoding/json rejects a body the decoder accepts")
		require.Equal(t, reference, req)
	})
}

func TestCountMembers(t *testing.T) {
	for _, tt := range []struct {
		object string
		count  int
	}{
		{`{}`, 0},
		{` { } `, 0},
		{`{"a":1}`, 1},
		{`{"a":[1,2,{"b":3,"c":4}],"d":"x,y","e":{"f":[]}}`, 3},
		{`{"a":"quote \" and comma , inside","b":"back\\slash"}`, 2},
		{`{"a":"\\","b":"}"}`, 2},
		{`{"a":1,"a":2}`, 2},
	} {
		t.Run(tt.object, func(t *testing.T) {
			require.Equal(t, tt.count, countMembers([]byte(tt.object)))
		})
	}
}

// FuzzCountMembers compares countMembers with a count by encoding/json's
// tokenizer on every input that json.Unmarshal accepts as an object.
func FuzzCountMembers(f *testing.F) {
	for _, seed := range []string{`{}`, `{"a":1,"b":[1,{"c":","}]}`, `{"a":"\"}"}`,
		`{"sub":"x","sub":"y"}`, ` {"a" : null , "b":true} `} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var object map[string]any
		if json.Unmarshal(data, &object) != nil || object == nil {
			return
		}
		require.Equal(t, membersByTokens(t, data), countMembers(data))
	})
}

// membersByTokens counts the top-level members of a valid JSON object with
// json.Decoder, which reads each name as a token and then its whole value.
func membersByTokens(t *testing.T, data []byte) int {
	decoder := json.NewDecoder(bytes.NewReader(data))
	_, err := decoder.Token()
	require.NoError(t, err)
	count := 0
	for decoder.More() {
		_, err := decoder.Token()
		require.NoError(t, err)
		var value json.RawMessage
		require.NoError(t, decoder.Decode(&value))
		count++
	}
	return count
}
