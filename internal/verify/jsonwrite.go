package verify

import (
	"encoding/json"
	"unicode/utf8"
)

// appendResponse appends response as JSON, byte for byte as json.Marshal
// encodes it, without reflection. When rawClaims is not nil, it is written as
// the claims member in place of response.Claims. rawClaims must be a JSON object
// in valid UTF-8.
func appendResponse(dst []byte, response *Response, rawClaims []byte) []byte {
	dst = append(dst, `{"valid":`...)
	if response.Valid {
		dst = append(dst, "true"...)
	} else {
		dst = append(dst, "false"...)
	}
	dst = appendStringMember(dst, "spiffe_id", response.SPIFFEID)
	dst = appendStringMember(dst, "trust_domain", response.TrustDomain)
	dst = appendStringMember(dst, "expires_at", response.ExpiresAt)
	dst = appendStringMember(dst, "issued_at", response.IssuedAt)
	if len(response.Audience) > 0 {
		dst = append(dst, `,"audience":[`...)
		for i, value := range response.Audience {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, value)
		}
		dst = append(dst, ']')
	}
	dst = appendStringMember(dst, "key_id", response.KeyID)
	switch {
	case rawClaims != nil:
		dst = append(dst, `,"claims":`...)
		dst = append(dst, rawClaims...)
	case len(response.Claims) > 0:
		// Claims decoded by encoding/json always encode; the fallback covers
		// callers that built the map themselves.
		if claims, err := json.Marshal(response.Claims); err == nil {
			dst = append(dst, `,"claims":`...)
			dst = append(dst, claims...)
		}
	}
	if response.Error != nil {
		dst = append(dst, `,"error":{"code":`...)
		dst = appendJSONString(dst, response.Error.Code)
		dst = append(dst, `,"message":`...)
		dst = appendJSONString(dst, response.Error.Message)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendStringMember appends `,"name":value` unless value is empty, as the
// omitempty option of encoding/json does.
func appendStringMember(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, value)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string with encoding/json's default
// escaping: the two-character escapes for ", \, backspace, form feed, newline,
// carriage return and tab; \u00XX for the other control characters and for <, >
// and &, so that the output is safe inside HTML; \u2028 and \u2029, which
// JavaScript does not allow in string literals; and U+FFFD for each byte of
// invalid UTF-8.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		var escape string
		switch {
		case r == utf8.RuneError && size == 1:
			escape = `\ufffd`
		case r == '\u2028':
			escape = `\u2028`
		case r == '\u2029':
			escape = `\u2029`
		default:
			i += size
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, escape...)
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
