package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// jsonReader reads a JSON object whose member values are strings, arrays of
// strings or null: a JWS header and a request body of the API. Its callers
// compare member names exactly and reject a repeated one, where encoding/json
// matches names case-insensitively and keeps the last. It decodes strings as
// encoding/json does, so invalid UTF-8 becomes U+FFFD. It stops at the first
// byte that does not fit the expected shape. Its errors are therefore right for
// valid JSON of another shape, and callers call describeInvalidJSON first to
// report broken JSON as such.
type jsonReader struct {
	data []byte
	pos  int
	// members counts the members read so far, for the comma rule.
	members int
}

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
		return errors.New("expected a JSON object")
	}
	return nil
}

// nextMember reads the name of the next member and the colon after it. It
// returns false at the closing brace, after which only white space may follow.
func (r *jsonReader) nextMember() (string, bool, error) {
	if r.consume('}') {
		r.skipSpace()
		if r.pos != len(r.data) {
			return "", false, errors.New("data after the JSON object")
		}
		return "", false, nil
	}
	if r.members > 0 && !r.consume(',') {
		return "", false, fmt.Errorf("expected , or } after member %d", r.members)
	}
	r.skipSpace()
	name, err := r.readString()
	if err != nil {
		return "", false, err
	}
	if !r.consume(':') {
		return "", false, fmt.Errorf("expected : after member name %q", name)
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
		return "", fmt.Errorf("expected a string at byte %d", r.pos+1)
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
				return "", err
			}
			return s, nil
		case c == '\\':
			plain = false
			i++ // the escaped character cannot end the string
		case c < 0x20:
			plain = false
		}
	}
	return "", errors.New("unterminated string")
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
		return nil, fmt.Errorf("expected a string or an array at byte %d", r.pos+1)
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
			return nil, errors.New("expected , or ] in an array")
		}
	}
}

// describeInvalidJSON returns why data is not a single JSON value (RFC 8259)
// with optional white space around it, or "" when it is one. Byte numbers count
// from 1.
func describeInvalidJSON(data []byte) string {
	if json.Valid(data) {
		return ""
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return "it is empty"
	}
	decoder := json.NewDecoder(bytes.NewReader(data))
	var value json.RawMessage
	err := decoder.Decode(&value)
	var syntaxErr *json.SyntaxError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		// Every byte fitted, but the value is not complete.
		return fmt.Sprintf("it ends after %d bytes, before the JSON value is complete, "+
			"so it looks truncated", len(data))
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("%v at byte %d", syntaxErr, syntaxErr.Offset)
	case err != nil:
		return err.Error()
	default:
		end := int(decoder.InputOffset())
		extra := len(data) - end - len(bytes.TrimLeft(data[end:], " \t\r\n"))
		return fmt.Sprintf("it has data after the JSON value, at byte %d", end+extra+1)
	}
}
