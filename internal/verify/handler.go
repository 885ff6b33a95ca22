package verify

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// DefaultMaxRequestBody is the largest request body the handler reads, in bytes.
// A JWT-SVID is usually under 2 KiB and an X509-SVID chain of a leaf and two
// intermediates under 4 KiB of PEM, so 64 KiB leaves ample room.
const DefaultMaxRequestBody = 64 << 10

// HandlerOption configures NewHandler.
type HandlerOption func(*handler)

// WithMaxRequestBody sets the largest request body read, in bytes. Zero or less
// keeps DefaultMaxRequestBody.
func WithMaxRequestBody(limit int64) HandlerOption {
	return func(h *handler) {
		if limit > 0 {
			h.maxBody = limit
		}
	}
}

type handler struct {
	verifier *Verifier
	log      *slog.Logger
	maxBody  int64
	// rejections limits the log lines about rejected credentials, which a
	// misbehaving client can cause at any rate.
	rejections *logLimiter
	// jwtSVID and x509SVID serve the two routes.
	jwtSVID  http.HandlerFunc
	x509SVID http.HandlerFunc
}

// NewHandler returns the HTTP API of v, which must not be nil: POST JWTSVIDPath
// with a JWTSVIDRequest and POST X509SVIDPath with an X509SVIDRequest or a PEM
// body. A valid credential gets 200, a rejected one 401, and a request the API
// cannot use 400, 404, 405, 413 or 415. Every response body is a JSON Response.
// Tokens are never logged: log lines name the claimed SPIFFE ID and the error
// code only. A nil logger means slog.Default().
func NewHandler(v *Verifier, logger *slog.Logger, opts ...HandlerOption) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	h := &handler{verifier: v, log: logger, maxBody: DefaultMaxRequestBody,
		rejections: newLogLimiter(DefaultRejectionLogsPerSecond)}
	for _, opt := range opts {
		opt(h)
	}
	h.jwtSVID = h.serve(route{kind: "jwt-svid", mediaTypes: []string{jsonMediaType},
		verify: h.verifyJWTSVID})
	h.x509SVID = h.serve(route{kind: "x509-svid", mediaTypes: []string{jsonMediaType,
		"application/x-pem-file", "application/pem-certificate-chain"},
		verify: h.verifyX509SVID})
	return h
}

// ServeHTTP routes on the path exactly as the request spells it. net/http's
// ServeMux would redirect a path that cleans to a route, such as
// //v1/verify/jwt-svid, with an empty body. Here such a path gets the JSON 404
// of every unknown path.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.EscapedPath() {
	case JWTSVIDPath:
		h.jwtSVID(w, r)
	case X509SVIDPath:
		h.x509SVID(w, r)
	default:
		err := invalidRequest("no route %s %s; the API serves POST %s and POST %s, "+
			"and the path must match exactly", r.Method, r.URL.EscapedPath(), JWTSVIDPath,
			X509SVIDPath)
		h.logRejection("request", err)
		writeFailure(w, http.StatusNotFound, err)
	}
}

// route is one POST route of the API: the kind of credential it verifies, for
// log lines, the media types its body may have, and its verification.
type route struct {
	kind       string
	mediaTypes []string
	verify     func(mediaType string, body []byte) (*Result, int, error)
}

// serve applies the checks every route shares (method, Content-Type,
// Content-Encoding and body size), then verifies and writes the outcome as the
// response.
func (h *handler) serve(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			err := invalidRequest("method %s is not allowed on %s; use POST", r.Method,
				r.URL.Path)
			h.logRejection("request", err)
			w.Header().Set("Allow", http.MethodPost)
			writeFailure(w, http.StatusMethodNotAllowed, err)
			return
		}
		result, status, err := h.verifyRequest(w, r, rt)
		if err != nil {
			h.logRejection(rt.kind, err)
			writeFailure(w, status, err)
			return
		}
		// Enabled first, so that the arguments are not boxed on every request.
		if h.log.Enabled(r.Context(), slog.LevelDebug) {
			h.log.Debug("credential verified", "kind", rt.kind, "spiffe_id",
				result.SPIFFEID)
		}
		writeResult(w, result)
	}
}

func (h *handler) verifyRequest(w http.ResponseWriter, r *http.Request,
	rt route) (*Result, int, error) {
	if err := checkContentEncoding(r); err != nil {
		// RFC 9110 15.5.16: a 415 for a content coding names the accepted ones.
		w.Header().Set("Accept-Encoding", "identity")
		return nil, http.StatusUnsupportedMediaType, err
	}
	mediaType, err := checkContentType(r, rt.mediaTypes)
	if err != nil {
		return nil, http.StatusUnsupportedMediaType, err
	}
	body, status, err := h.readBody(r)
	if err != nil {
		return nil, status, err
	}
	return rt.verify(mediaType, body)
}

func (h *handler) verifyJWTSVID(_ string, body []byte) (*Result, int, error) {
	req, err := decodeJWTSVIDRequest(body)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	if req.Token == "" {
		return nil, http.StatusBadRequest, invalidRequest(`request has no "token"; ` +
			"send the JWT-SVID in compact serialization")
	}
	result, err := h.verifier.VerifyJWTSVID(req.Token, req.Audience)
	return result, statusFor(err), err
}

func (h *handler) verifyX509SVID(mediaType string, body []byte) (*Result, int, error) {
	chainPEM := body
	if mediaType == jsonMediaType {
		req, err := decodeX509SVIDRequest(body)
		if err != nil {
			return nil, http.StatusBadRequest, err
		}
		chainPEM = []byte(req.ChainPEM)
	}
	if len(bytes.TrimSpace(chainPEM)) == 0 {
		return nil, http.StatusBadRequest, invalidRequest("request has no certificate "+
			"chain; send the X509-SVID as PEM, leaf first, in %q or as the body with "+
			"Content-Type application/x-pem-file", "chain_pem")
	}
	chain, err := ParseCertificateChainPEM(chainPEM)
	if err != nil {
		return nil, statusFor(err), err
	}
	result, err := h.verifier.VerifyX509SVID(chain)
	return result, statusFor(err), err
}

// readBody reads at most maxBody bytes and returns 413 beyond that.
func (h *handler) readBody(r *http.Request) ([]byte, int, error) {
	if r.ContentLength > h.maxBody {
		return nil, http.StatusRequestEntityTooLarge, invalidRequest("request body of %d "+
			"bytes exceeds the limit of %d bytes", r.ContentLength, h.maxBody)
	}
	var body []byte
	var err error
	if r.ContentLength >= 0 {
		// net/http ends the body after Content-Length bytes, so the body fits
		// exactly.
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, body)
	} else {
		buffer := &bytes.Buffer{}
		_, err = buffer.ReadFrom(io.LimitReader(r.Body, h.maxBody+1))
		body = buffer.Bytes()
	}
	if err != nil {
		return nil, http.StatusBadRequest, invalidRequest("reading the request body "+
			"failed (%v)", err)
	}
	if int64(len(body)) > h.maxBody {
		return nil, http.StatusRequestEntityTooLarge, invalidRequest("request body exceeds "+
			"the limit of %d bytes", h.maxBody)
	}
	return body, 0, nil
}

// statusFor maps a verification error to its HTTP status: 400 when the request
// is unusable, 401 when the credential is rejected.
func statusFor(err error) int {
	switch ErrorCode(err) {
	case "":
		return http.StatusOK
	case CodeInvalidRequest:
		return http.StatusBadRequest
	default:
		return http.StatusUnauthorized
	}
}

func (h *handler) logRejection(kind string, err error) {
	allowed, suppressed := h.rejections.allow(time.Now())
	if !allowed {
		return
	}
	var verifyErr *Error
	if !errors.As(err, &verifyErr) {
		verifyErr = &Error{Code: CodeInvalidRequest}
	}
	h.log.Info("credential rejected", "kind", kind, "code", verifyErr.Code,
		"spiffe_id", verifyErr.ClaimedID, "suppressed_since_last", suppressed)
}

func writeResult(w http.ResponseWriter, result *Result) {
	response := Response{
		Valid:       true,
		SPIFFEID:    result.SPIFFEID,
		TrustDomain: result.TrustDomain,
		ExpiresAt:   result.ExpiresAt.UTC().Format(time.RFC3339),
		Audience:    result.Audience,
		KeyID:       result.KeyID,
		Claims:      result.Claims,
	}
	if !result.IssuedAt.IsZero() {
		response.IssuedAt = result.IssuedAt.UTC().Format(time.RFC3339)
	}
	writeJSON(w, http.StatusOK, &response, result.rawClaims)
}

func writeFailure(w http.ResponseWriter, status int, err error) {
	var verifyErr *Error
	if !errors.As(err, &verifyErr) {
		verifyErr = &Error{Code: CodeInvalidRequest, Message: err.Error()}
	}
	writeJSON(w, status, &Response{Error: &ErrorBody{Code: verifyErr.Code,
		Message: verifyErr.Message}}, nil)
}

// Header values shared by every response. net/http only reads them, and setting
// the canonical keys directly saves two allocations per response.
var (
	jsonContentType = []string{"application/json"}
	// A verification result is about one credential at one moment.
	noStore = []string{"no-store"}
)

// responseBufferSize is the initial size of a response body buffer, enough for
// a verified JWT-SVID with a few claims.
const responseBufferSize = 512

// writeJSON writes response and a newline, as json.Encoder does, with its
// Content-Length so that a large response is not sent in chunks.
func writeJSON(w http.ResponseWriter, status int, response *Response, rawClaims []byte) {
	body := make([]byte, 0, responseBufferSize+len(rawClaims))
	body = appendResponse(body, response, rawClaims)
	body = append(body, '\n')
	header := w.Header()
	header["Content-Type"] = jsonContentType
	header["Cache-Control"] = noStore
	header["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
