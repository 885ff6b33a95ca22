package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// jsonReader reads a JSON object whose member values are strings, arrays of
// strings or null: a JWS header and a request body of the API. Its callers
// compare member names exactly and reject a repeated one, where encoding/json
// matches names case-insensitively and keeps the last. It decodes strings as
// encoding/json does, so invalid UTF-8 becomes U+FFFD.
type jsonReader struct {
	data []byte
	pos  int
	// members counts the members read so far, for the comma rule.
	members int
}

var errJSONSyntax = errors.New("invalid JSON")

func newJSONReader(data []byte) *jsonReader { return &jsonReader{data: data} }

func (r *jsonReader) skipSpace() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// consume skips white space and then c, and reports whether c was there.
func (r *jsonReader) consume(c byte) bool {
	r.skipSpace()
	if r.pos < len(r.data) && r.data[r.pos] == c {
		r.pos++
		return true
	}
	return false
}

// beginObject reads the opening brace.
func (r *jsonReader) beginObject() error {
	if !r.consume('{') {
		return fmt.Errorf("%w: expected a JSON object", errJSONSyntax)
	}
	return nil
}

// nextMember reads the name of the next member and the colon after it. It
// returns false at the closing brace, after which only white space may follow.
func (r *jsonReader) nextMember() (string, bool, error) {
	if r.consume('}') {
		r.skipSpace()
		if r.pos != len(r.data) {
			return "", false, fmt.Errorf("%w: data after the JSON object", errJSONSyntax)
		}
		return "", false, nil
	}
	if r.members > 0 && !r.consume(',') {
		return "", false, fmt.Errorf("%w: expected , or } after member %d", errJSONSyntax,
			r.members)
	}
	r.skipSpace()
	name, err := r.readString()
	if err != nil {
		return "", false, err
	}
	if !r.consume(':') {
		return "", false, fmt.Errorf("%w: expected : after member name %q", errJSONSyntax,
			name)
	}
	r.members++
	return name, true, nil
}

// readNull reads a null value and reports whether there was one.
func (r *jsonReader) readNull() bool {
	r.skipSpace()
	if len(r.data)-r.pos >= 4 && string(r.data[r.pos:r.pos+4]) == "null" {
		r.pos += 4
		return true
	}
	return false
}

// peek returns the next byte after white space, or 0 at the end.
func (r *jsonReader) peek() byte {
	r.skipSpace()
	if r.pos == len(r.data) {
		return 0
	}
	return r.data[r.pos]
}

// readString reads a JSON string value.
func (r *jsonReader) readString() (string, error) {
	r.skipSpace()
	if r.pos == len(r.data) || r.data[r.pos] != '"' {
		return "", fmt.Errorf("%w: expected a string", errJSONSyntax)
	}
	start := r.pos + 1
	plain := true
	for i := start; i < len(r.data); i++ {
		switch c := r.data[i]; {
		case c == '"':
			r.pos = i + 1
			if plain && utf8.Valid(r.data[start:i]) {
				return string(r.data[start:i]), nil
			}
			// Escapes, control characters and invalid UTF-8 take encoding/json's
			// path, which rejects what JSON forbids and decodes the rest.
			var s string
			if err := json.Unmarshal(r.data[start-1:i+1], &s); err != nil {
				return "", fmt.Errorf("%w: %v", errJSONSyntax, err)
			}
			return s, nil
		case c == '\\':
			plain = false
			i++ // the escaped character cannot end the string
		case c < 0x20:
			plain = false
		}
	}
	return "", fmt.Errorf("%w: unterminated string", errJSONSyntax)
}

// readStrings reads a string, which becomes a list of one, or an array of
// strings.
func (r *jsonReader) readStrings() ([]string, error) {
	if r.peek() == '"' {
		s, err := r.readString()
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	if !r.consume('[') {
		return nil, fmt.Errorf("%w: expected a string or an array of strings", errJSONSyntax)
	}
	list := []string{}
	if r.consume(']') {
		return list, nil
	}
	for {
		s, err := r.readString()
		if err != nil {
			return nil, err
		}
		list = append(list, s)
		if r.consume(']') {
			return list, nil
		}
		if !r.consume(',') {
			return nil, fmt.Errorf("%w: expected , or ] in an array", errJSONSyntax)
		}
	}
}
