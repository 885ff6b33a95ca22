package verify

import (
	"mime"
	"net/http"
	"slices"
	"strings"
)

// jsonMediaType is the media type of JSON request bodies.
const jsonMediaType = "application/json"

// checkContentType returns the media type of the request body when it is one
// of accepted, and otherwise an error that names the header value and the
// media types to use. JSON must be UTF-8 (RFC 8259 8.1), so a JSON body with
// another charset parameter is rejected; other parameters are ignored.
func checkContentType(r *http.Request, accepted []string) (string, error) {
	contentType := r.Header.Get("Content-Type")
	mediaType := contentType // the common case, without parsing
	var params map[string]string
	if contentType == "" {
		return "", invalidRequest("request has no Content-Type; use %s",
			listMediaTypes(accepted))
	}
	if contentType != jsonMediaType {
		var err error
		if mediaType, params, err = mime.ParseMediaType(contentType); err != nil {
			return "", invalidRequest("Content-Type %q is not a valid media type (%v); "+
				"use %s", contentType, err, listMediaTypes(accepted))
		}
	}
	if !slices.Contains(accepted, mediaType) {
		return "", invalidRequest("Content-Type %q is not accepted on %s; use %s",
			contentType, r.URL.Path, listMediaTypes(accepted))
	}
	if charset, ok := params["charset"]; ok && mediaType == jsonMediaType &&
		!strings.EqualFold(charset, "utf-8") {
		return "", invalidRequest("Content-Type %q names charset %q, but a JSON body is "+
			"UTF-8 (RFC 8259 8.1); send charset=utf-8 or no charset", contentType, charset)
	}
	return mediaType, nil
}

// listMediaTypes joins media types as "a", "a or b", or "a, b or c".
func listMediaTypes(types []string) string {
	if len(types) == 1 {
		return types[0]
	}
	return strings.Join(types[:len(types)-1], ", ") + " or " + types[len(types)-1]
}

// checkContentEncoding rejects a compressed body, which the handler would
// otherwise read as JSON or PEM and report as malformed.
func checkContentEncoding(r *http.Request) error {
	for _, encoding := range r.Header.Values("Content-Encoding") {
		if encoding != "" && !strings.EqualFold(encoding, "identity") {
			return invalidRequest("Content-Encoding %q is not supported; send the body "+
				"uncompressed, without Content-Encoding", encoding)
		}
	}
	return nil
}
