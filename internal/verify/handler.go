package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
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
	h.jwtSVID = h.post(h.verifyJWTSVID)
	h.x509SVID = h.post(h.verifyX509SVID)
	return h
}

// ServeHTTP routes on the path exactly as the request spells it. net/http's
// ServeMux would answer a path that cleans to a route, such as
// //v1/verify/jwt-svid, with a redirect and an empty body; here it gets the
// JSON 404 of every unknown path.
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

// post restricts a route to POST and writes the verification outcome as the
// response.
func (h *handler) post(verify func(r *http.Request) (kind string, result *Result,
	status int, err error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			err := invalidRequest("method %s is not allowed on %s; use POST", r.Method,
				r.URL.Path)
			h.logRejection("request", err)
			w.Header().Set("Allow", http.MethodPost)
			writeFailure(w, http.StatusMethodNotAllowed, err)
			return
		}
		kind, result, status, err := verify(r)
		if err != nil {
			h.logRejection(kind, err)
			writeFailure(w, status, err)
			return
		}
		// Enabled first, so that the arguments are not boxed on every request.
		if h.log.Enabled(r.Context(), slog.LevelDebug) {
			h.log.Debug("credential verified", "kind", kind, "spiffe_id", result.SPIFFEID)
		}
		writeResult(w, result)
	}
}

func (h *handler) verifyJWTSVID(r *http.Request) (string, *Result, int, error) {
	const kind = "jwt-svid"
	if err := requireContentType(r, "application/json"); err != nil {
		return kind, nil, http.StatusUnsupportedMediaType, err
	}
	body, status, err := h.readBody(r)
	if err != nil {
		return kind, nil, status, err
	}
	req, err := decodeJWTSVIDRequest(body)
	if err != nil {
		return kind, nil, http.StatusBadRequest, err
	}
	if req.Token == "" {
		return kind, nil, http.StatusBadRequest, invalidRequest(`request has no "token"; ` +
			"send the JWT-SVID in compact serialization")
	}
	result, err := h.verifier.VerifyJWTSVID(req.Token, req.Audience)
	return kind, result, statusFor(err), err
}

func (h *handler) verifyX509SVID(r *http.Request) (string, *Result, int, error) {
	const kind = "x509-svid"
	if err := requireContentType(r, "application/json", "application/x-pem-file",
		"application/pem-certificate-chain"); err != nil {
		return kind, nil, http.StatusUnsupportedMediaType, err
	}
	body, status, err := h.readBody(r)
	if err != nil {
		return kind, nil, status, err
	}
	chainPEM := body
	if mediaType(r) == "application/json" {
		var req X509SVIDRequest
		if err := decodeStrict(body, &req); err != nil {
			return kind, nil, http.StatusBadRequest, err
		}
		chainPEM = []byte(req.ChainPEM)
	}
	if len(bytes.TrimSpace(chainPEM)) == 0 {
		return kind, nil, http.StatusBadRequest, invalidRequest("request has no "+
			"certificate chain; send the X509-SVID as PEM, leaf first, in %q or as the "+
			"body with Content-Type application/x-pem-file", "chain_pem")
	}
	chain, err := ParseCertificateChainPEM(chainPEM)
	if err != nil {
		return kind, nil, statusFor(err), err
	}
	result, err := h.verifier.VerifyX509SVID(chain)
	return kind, result, statusFor(err), err
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

func mediaType(r *http.Request) string {
	contentType := r.Header.Get("Content-Type")
	if contentType == "application/json" {
		return contentType // the common case, without parsing
	}
	parsed, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return parsed
}

func requireContentType(r *http.Request, accepted ...string) error {
	got := mediaType(r)
	for _, want := range accepted {
		if got == want {
			return nil
		}
	}
	return invalidRequest("Content-Type %q is not accepted on %s; use %q",
		r.Header.Get("Content-Type"), r.URL.Path, accepted)
}

// decodeStrict decodes one JSON object and rejects unknown members and trailing
// data, so that a misspelled member fails loudly instead of being ignored.
func decodeStrict(body []byte, dest any) error {
	if problem := describeInvalidJSON(body); problem != "" {
		return invalidRequest("request body is not valid JSON: %s", problem)
	}
	decoder := json.NewDecoder(bytes.NewReader(body))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(dest); err != nil {
		return invalidRequest("request body is not the expected JSON object (%v)", err)
	}
	return nil
}

// decodeJWTSVIDRequest decodes a JWTSVIDRequest as decodeStrict does, without
// reflection. Member names match exactly and appear at most once, and null
// counts as absent.
func decodeJWTSVIDRequest(body []byte) (JWTSVIDRequest, error) {
	var req JWTSVIDRequest
	fail := func(err error) (JWTSVIDRequest, error) {
		// The reader stops at the first unexpected byte, which in broken JSON can
		// look like a member of the wrong type.
		if problem := describeInvalidJSON(body); problem != "" {
			return JWTSVIDRequest{}, invalidRequest("request body is not valid JSON: %s",
				problem)
		}
		return JWTSVIDRequest{}, invalidRequest("request body is not the expected JSON "+
			`object {"token": "...", "audience": [...]} (%v)`, err)
	}
	reader := newJSONReader(body)
	if err := reader.beginObject(); err != nil {
		return fail(err)
	}
	var seenToken, seenAudience bool
	for {
		name, ok, err := reader.nextMember()
		if err != nil {
			return fail(err)
		}
		if !ok {
			return req, nil
		}
		switch {
		case name == "token" && !seenToken:
			seenToken = true
			if !reader.readNull() {
				if req.Token, err = reader.readString(); err != nil {
					return fail(fmt.Errorf(`"token" must be a string: %w`, err))
				}
			}
		case name == "audience" && !seenAudience:
			seenAudience = true
			if !reader.readNull() {
				if req.Audience, err = reader.readStrings(); err != nil {
					return fail(fmt.Errorf("audience must be a string or an array of "+
						"strings: %w", err))
				}
			}
		case name == "token" || name == "audience":
			return fail(fmt.Errorf("member %q appears twice", name))
		default:
			return fail(fmt.Errorf("unknown member %q", name))
		}
	}
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
