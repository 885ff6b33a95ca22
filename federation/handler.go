package federation

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

const (
	// allowedMethods is the Allow header of a 405 response.
	allowedMethods = "GET, HEAD"
	// bundleCacheControl lets caches store the bundle but makes them revalidate it on
	// every use. Revalidation costs a 304 thanks to the ETag, and a peer never gets
	// a bundle older than the one this node serves, whatever the refresh hint.
	bundleCacheControl = "no-cache"
	// noBundleRetryAfter is the Retry-After value, in seconds, of the 503 sent
	// while no bundle is set. A node sets its first bundle within about one Raft
	// election of starting.
	noBundleRetryAfter = "1"
)

// Handler serves the local trust domain's SPIFFE bundle on one path (SPIFFE
// Federation 4 and 5.2). It requires no client authentication of any kind (SPIFFE
// Federation 5.2.1.3 and 5.2.2.3). It is safe for concurrent use, and requests never
// take a lock.
type Handler struct {
	path    string
	current atomic.Pointer[servedBundle]
}

// servedBundle is one version of the document with the values derived from it once.
type servedBundle struct {
	doc           []byte
	etag          string
	contentLength string
}

// NewHandler returns a handler that serves the bundle on path, for example "/".
// A path without a leading slash gets one. Until SetBundle is called, the handler
// responds 503 Service Unavailable.
func NewHandler(path string) *Handler {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return &Handler{path: path}
}

// SetBundle makes doc the served bundle document. The caller passes a valid SPIFFE
// bundle in UTF-8 JSON; the handler stores a copy and serves it byte for byte. An
// empty doc clears the bundle, and the handler responds 503 again.
func (h *Handler) SetBundle(doc []byte) {
	if len(doc) == 0 {
		h.current.Store(nil)
		return
	}
	sum := sha256.Sum256(doc)
	// A strong ETag from the first 128 bits of the digest: the same document always
	// gets the same tag on every node, so a peer's If-None-Match works across the
	// nodes of a cluster behind one address.
	h.current.Store(&servedBundle{
		doc:           append([]byte(nil), doc...),
		etag:          `"` + hex.EncodeToString(sum[:16]) + `"`,
		contentLength: strconv.Itoa(len(doc)),
	})
}

// ServeHTTP responds to GET and HEAD on the configured path with the bundle, or 304
// Not Modified when If-None-Match matches its ETag.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != h.path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", allowedMethods)
		http.Error(w, "method not allowed; the bundle endpoint serves GET and HEAD",
			http.StatusMethodNotAllowed)
		return
	}
	b := h.current.Load()
	if b == nil {
		w.Header().Set("Retry-After", noBundleRetryAfter)
		http.Error(w, "no bundle is available yet; retry later",
			http.StatusServiceUnavailable)
		return
	}

	header := w.Header()
	header.Set("Etag", b.etag)
	header.Set("Cache-Control", bundleCacheControl)
	if matchesETag(r.Header["If-None-Match"], b.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	header.Set("Content-Type", "application/json")
	header.Set("Content-Length", b.contentLength)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b.doc)
}

// matchesETag reports whether any If-None-Match value matches etag. RFC 9110 13.1.2:
// If-None-Match uses the weak comparison, so a W/ prefix is ignored, and "*" matches
// any current representation.
func matchesETag(values []string, etag string) bool {
	for _, value := range values {
		for value != "" {
			var tag string
			tag, value, _ = strings.Cut(value, ",")
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
				return true
			}
		}
	}
	return false
}
