package verify

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/federation"
	"github.com/bundlex/bundlex/internal/testutil"
)

// syncBuffer is a log sink that the server goroutines and the test share.
type syncBuffer = testutil.SyncBuffer

// testAPI is the verification API of a fixture served over TLS on loopback.
type testAPI struct {
	base   string
	client *http.Client
	logs   *syncBuffer
	server *federation.EndpointServer
}

// serverCertificate issues the node's X509-SVID, with 127.0.0.1 as IP SAN so that
// a standard HTTPS client can check the host.
func serverCertificate(t testing.TB, o *org) *tls.Certificate {
	t.Helper()
	cert, key := o.ca.issue(t, certSpec{uris: []string{o.id("/bundlex/node")},
		ips: []net.IP{net.IPv4(127, 0, 0, 1)}})
	return &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

func startAPI(t testing.TB, f *fixture, opts ...HandlerOption) *testAPI {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	server := startTLSServer(t, NewHandler(f.verifier, logger, opts...),
		serverCertificate(t, f.orgB), logger)
	roots := x509.NewCertPool()
	roots.AddCert(f.orgB.ca.cert)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	},
		// The API never redirects, so a redirect must reach the test as it is.
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	t.Cleanup(client.CloseIdleConnections)
	return &testAPI{base: "https://" + server.Addr().String(), client: client, logs: logs,
		server: server}
}

type apiResponse struct {
	status int
	header http.Header
	body   Response
}

func (a *testAPI) do(t *testing.T, method, path, contentType, body string) apiResponse {
	t.Helper()
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var decoded Response
	require.NoError(t, json.Unmarshal(raw, &decoded), "body: %s", raw)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	return apiResponse{status: resp.StatusCode, header: resp.Header, body: decoded}
}

func jsonBody(t testing.TB, value any) string {
	t.Helper()
	raw, err := json.Marshal(value)
	require.NoError(t, err)
	return string(raw)
}

func TestHandlerVerifiesJWTSVID(t *testing.T) {
	f := newFixture(t)
	api := startAPI(t, f)
	c := claims(f.orgA.id("/agents/planner"), f.now)
	c["tenant"] = "blue"
	token := f.orgA.mint(t, c)

	for name, audience := range map[string]any{"audience as array": []string{"billing"},
		"audience as string": "billing"} {
		t.Run(name, func(t *testing.T) {
			resp := api.do(t, http.MethodPost, JWTSVIDPath, "application/json",
				jsonBody(t, map[string]any{"token": token, "audience": audience}))
			require.Equal(t, http.StatusOK, resp.status)
			require.True(t, resp.body.Valid)
			require.Equal(t, "spiffe://org-a.test/agents/planner", resp.body.SPIFFEID)
			require.Equal(t, "org-a.test", resp.body.TrustDomain)
			require.Equal(t, f.now.Add(5*time.Minute).UTC().Format(time.RFC3339),
				resp.body.ExpiresAt)
			require.Equal(t, "blue", resp.body.Claims["tenant"])
			require.Equal(t, f.orgA.kid, resp.body.KeyID)
			require.Nil(t, resp.body.Error)
			require.Equal(t, "no-store", resp.header.Get("Cache-Control"))
		})
	}
}

func TestHandlerRejectsJWTSVID(t *testing.T) {
	f := newFixture(t)
	api := startAPI(t, f)
	expiredClaims := claims(f.orgA.id("/agents/planner"), f.now)
	expiredClaims["exp"] = f.now.Add(-time.Hour).Unix()
	expiredClaims["iat"] = f.now.Add(-2 * time.Hour).Unix()
	expired := f.orgA.mint(t, expiredClaims)
	outside := f.orgA.mint(t, claims(f.orgA.id("/admin"), f.now))
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"expired token", "application/json",
			jsonBody(t, map[string]any{"token": expired, "audience": "billing"}),
			http.StatusUnauthorized, CodeExpired},
		{"ID outside prefixes", "application/json",
			jsonBody(t, map[string]any{"token": outside, "audience": "billing"}),
			http.StatusUnauthorized, CodeIDNotAllowed},
		{"token not a JWT", "application/json",
			`{"token": "abc", "audience": "billing"}`, http.StatusUnauthorized,
			CodeMalformed},
		{"missing token", "application/json", `{"audience": "billing"}`,
			http.StatusBadRequest, CodeInvalidRequest},
		{"missing audience", "application/json", jsonBody(t, map[string]any{
			"token": outside}), http.StatusBadRequest, CodeInvalidRequest},
		{"audience of wrong type", "application/json",
			`{"token": "abc", "audience": 7}`, http.StatusBadRequest, CodeInvalidRequest},
		{"unknown member", "application/json",
			`{"token": "abc", "audiences": ["billing"]}`, http.StatusBadRequest,
			CodeInvalidRequest},
		{"body not JSON", "application/json", `token=abc`, http.StatusBadRequest,
			CodeInvalidRequest},
		{"data after object", "application/json",
			`{"token": "abc", "audience": "billing"} {}`, http.StatusBadRequest,
			CodeInvalidRequest},
		{"form content type", "application/x-www-form-urlencoded", `token=abc`,
			http.StatusUnsupportedMediaType, CodeInvalidRequest},
		{"body over limit", "application/json", `{"token": "` +
			strings.Repeat("a", DefaultMaxRequestBody) + `"}`,
			http.StatusRequestEntityTooLarge, CodeInvalidRequest},
		{"token repeated", "application/json",
			`{"token": "abc", "token": "def", "audience": "billing"}`,
			http.StatusBadRequest, CodeInvalidRequest},
		{"member name in other case", "application/json",
			`{"Token": "abc", "audience": "billing"}`, http.StatusBadRequest,
			CodeInvalidRequest},
		{"token over size limit", "application/json", jsonBody(t, map[string]any{
			"token": strings.Repeat("a", MaxTokenSize+1), "audience": "billing"}),
			http.StatusUnauthorized, CodeMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := api.do(t, http.MethodPost, JWTSVIDPath, tt.contentType, tt.body)
			require.Equal(t, tt.status, resp.status)
			require.False(t, resp.body.Valid)
			require.NotNil(t, resp.body.Error)
			require.Equal(t, tt.code, resp.body.Error.Code)
			require.NotEmpty(t, resp.body.Error.Message)
			require.Empty(t, resp.body.SPIFFEID)
		})
	}
}

// TestHandlerReportsInvalidJSON checks that a body that is not JSON at all is
// reported as such, and not as a member of the wrong type.
func TestHandlerReportsInvalidJSON(t *testing.T) {
	f := newFixture(t)
	api := startAPI(t, f)
	tests := []struct {
		name      string
		path      string
		body      string
		fragments []string
	}{
		{"JWT body truncated", JWTSVIDPath, `{"token":`,
			[]string{"request body is not valid JSON", "ends after 9 bytes", "truncated"}},
		{"JWT body truncated in token", JWTSVIDPath, `{"token":"eyJhbGciOiJFUzI1NiJ9`,
			[]string{"request body is not valid JSON", "truncated"}},
		{"JWT body empty", JWTSVIDPath, ``,
			[]string{"request body is not valid JSON", "empty"}},
		{"JWT body with bad character", JWTSVIDPath, `{"token":'abc'}`,
			[]string{"request body is not valid JSON", "invalid character '\\''",
				"at byte 10"}},
		{"JWT token a number", JWTSVIDPath, `{"token":7,"audience":"billing"}`,
			[]string{`"token" must be a string`}},
		{"X509 body truncated", X509SVIDPath, `{"chain_pem":`,
			[]string{"request body is not valid JSON", "ends after 13 bytes", "truncated"}},
		{"X509 body with two objects", X509SVIDPath, `{"chain_pem":"x"} {}`,
			[]string{"request body is not valid JSON", "data after the JSON value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := api.do(t, http.MethodPost, tt.path, "application/json", tt.body)
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.NotNil(t, resp.body.Error)
			require.Equal(t, CodeInvalidRequest, resp.body.Error.Code)
			for _, fragment := range tt.fragments {
				require.Contains(t, resp.body.Error.Message, fragment)
			}
		})
	}
}

func TestHandlerRejectsX509SVIDRequests(t *testing.T) {
	f := newFixture(t)
	api := startAPI(t, f)
	chainPEM := encodePEM(f.orgA.ca.leaf(t, f.orgA.id("/agents/planner")))
	tests := []struct {
		name     string
		body     string
		fragment string
	}{
		{"member name in other case", jsonBody(t, map[string]string{"Chain_PEM": chainPEM}),
			`unknown member "Chain_PEM"`},
		{"chain repeated", `{"chain_pem":"x","chain_pem":` + jsonBody(t, chainPEM) + `}`,
			`"chain_pem" appears twice`},
		{"chain a number", `{"chain_pem":7}`, `"chain_pem" must be a string`},
		{"body an array", `[]`, "expected a JSON object"},
		{"chain null", `{"chain_pem":null}`, "no certificate chain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := api.do(t, http.MethodPost, X509SVIDPath, "application/json", tt.body)
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.NotNil(t, resp.body.Error)
			require.Equal(t, CodeInvalidRequest, resp.body.Error.Code)
			require.Contains(t, resp.body.Error.Message, tt.fragment)
		})
	}
}

// TestHandlerChecksContentHeaders checks the 415 responses: each names the header
// value at fault and what to send instead.
func TestHandlerChecksContentHeaders(t *testing.T) {
	f := newFixture(t)
	api := startAPI(t, f)
	token := f.orgB.mint(t, claims(f.orgB.id("/billing/api"), f.now))
	jwtBody := jsonBody(t, map[string]any{"token": token, "audience": "billing"})
	chainPEM := encodePEM(f.orgB.ca.leaf(t, f.orgB.id("/billing/api")))
	tests := []struct {
		name        string
		path        string
		contentType string
		encoding    string
		body        string
		status      int
		fragments   []string
	}{
		{"JSON with charset", JWTSVIDPath, "application/json; charset=UTF-8", "", jwtBody,
			http.StatusOK, nil},
		{"JSON in upper case", JWTSVIDPath, "Application/JSON", "", jwtBody, http.StatusOK,
			nil},
		{"identity encoding", JWTSVIDPath, "application/json", "identity", jwtBody,
			http.StatusOK, nil},
		{"PEM with charset", X509SVIDPath, "application/x-pem-file; charset=us-ascii", "",
			chainPEM, http.StatusOK, nil},
		{"no content type", JWTSVIDPath, "", "", jwtBody, http.StatusUnsupportedMediaType,
			[]string{"request has no Content-Type", "use application/json"}},
		{"unparsable content type", JWTSVIDPath, "application/json; charset", "", jwtBody,
			http.StatusUnsupportedMediaType,
			[]string{`Content-Type "application/json; charset" is not a valid media type`}},
		{"text on JWT route", JWTSVIDPath, "text/plain", "", jwtBody,
			http.StatusUnsupportedMediaType, []string{`Content-Type "text/plain" is not ` +
				"accepted on " + JWTSVIDPath + "; use application/json"}},
		{"text on X509 route", X509SVIDPath, "text/plain", "", chainPEM,
			http.StatusUnsupportedMediaType, []string{"use application/json, " +
				"application/x-pem-file or application/pem-certificate-chain"}},
		{"JSON in Latin-1", JWTSVIDPath, "application/json; charset=iso-8859-1", "",
			jwtBody, http.StatusUnsupportedMediaType,
			[]string{`charset "iso-8859-1"`, "UTF-8"}},
		{"gzip body", JWTSVIDPath, "application/json", "gzip", jwtBody,
			http.StatusUnsupportedMediaType,
			[]string{`Content-Encoding "gzip" is not supported`, "uncompressed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, api.base+tt.path,
				strings.NewReader(tt.body))
			require.NoError(t, err)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			resp, err := api.client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.status, resp.StatusCode, "body: %s", raw)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var decoded Response
			require.NoError(t, json.Unmarshal(raw, &decoded), "body: %s", raw)
			if tt.status == http.StatusOK {
				require.True(t, decoded.Valid)
				return
			}
			require.NotNil(t, decoded.Error)
			require.Equal(t, CodeInvalidRequest, decoded.Error.Code)
			for _, fragment := range tt.fragments {
				require.Contains(t, decoded.Error.Message, fragment)
			}
			if tt.encoding != "" {
				require.Equal(t, "identity", resp.Header.Get("Accept-Encoding"))
			}
		})
	}
}

// TestHandlerWritesTokenClaims checks that the claims of a verified token reach
// the response as the token carries them: integers beyond float64 precision
// keep their digits, and invalid UTF-8 is replaced so that the body stays valid
// JSON.
func TestHandlerWritesTokenClaims(t *testing.T) {
	f := newFixture(t)
	api := startAPI(t, f)
	sub := f.orgB.id("/svc")
	times := fmt.Sprintf(`"aud":["billing"],"exp":%d,"iat":%d`,
		f.now.Add(5*time.Minute).Unix(), f.now.Add(-time.Minute).Unix())
	header := `{"alg":"ES256","kid":"` + f.orgB.kid + `","typ":"JWT"}`
	tests := []struct {
		name    string
		payload string
		member  string
		claim   string
		value   any
	}{
		{"large integer", `{"sub":"` + sub + `",` + times + `,"serial":12345678901234567890}`,
			`"serial":12345678901234567890`, "serial", 12345678901234567890.0},
		{"invalid UTF-8", `{"sub":"` + sub + `",` + times + ",\"tenant\":\"a\xffb\"}",
			"\"tenant\":\"a\ufffdb\"", "tenant", "a\ufffdb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := signCompact(t, "ES256", f.orgB.jwtKey, header, tt.payload)
			body := jsonBody(t, JWTSVIDRequest{Token: token, Audience: Audience{"billing"}})
			resp, err := api.client.Post(api.base+JWTSVIDPath, "application/json",
				strings.NewReader(body))
			require.NoError(t, err)
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", raw)
			require.Equal(t, strconv.Itoa(len(raw)), resp.Header.Get("Content-Length"))
			require.True(t, json.Valid(raw), "body: %s", raw)
			require.Contains(t, string(raw), tt.member)

			var decoded Response
			require.NoError(t, json.Unmarshal(raw, &decoded))
			require.True(t, decoded.Valid)
			require.Equal(t, sub, decoded.Claims["sub"])
			require.Equal(t, tt.value, decoded.Claims[tt.claim])
		})
	}
}

func TestHandlerVerifiesX509SVID(t *testing.T) {
	f := newFixture(t)
	api := startAPI(t, f)
	intermediate := f.orgA.ca.intermediate(t, certSpec{})
	chainPEM := encodePEM(intermediate.leaf(t, f.orgA.id("/agents/planner")),
		intermediate.cert)
	foreignPEM := encodePEM(f.orgB.ca.leaf(t, f.orgA.id("/agents/planner")))
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"chain as JSON", "application/json", jsonBody(t, X509SVIDRequest{ChainPEM: chainPEM}),
			http.StatusOK, ""},
		{"chain as PEM body", "application/x-pem-file", chainPEM, http.StatusOK, ""},
		{"chain as RFC 8555 type", "application/pem-certificate-chain", chainPEM,
			http.StatusOK, ""},
		{"leaf signed by other domain", "application/x-pem-file", foreignPEM,
			http.StatusUnauthorized, CodeBadSignature},
		{"PEM that is not a chain", "application/x-pem-file", "hello",
			http.StatusUnauthorized, CodeMalformed},
		{"missing chain member", "application/json", `{}`, http.StatusBadRequest,
			CodeInvalidRequest},
		{"plain text body", "text/plain", chainPEM, http.StatusUnsupportedMediaType,
			CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := api.do(t, http.MethodPost, X509SVIDPath, tt.contentType, tt.body)
			require.Equal(t, tt.status, resp.status)
			if tt.code == "" {
				require.True(t, resp.body.Valid)
				require.Equal(t, "spiffe://org-a.test/agents/planner", resp.body.SPIFFEID)
				require.Equal(t, "org-a.test", resp.body.TrustDomain)
				require.NotEmpty(t, resp.body.ExpiresAt)
				require.Nil(t, resp.body.Claims)
				return
			}
			require.False(t, resp.body.Valid)
			require.Equal(t, tt.code, resp.body.Error.Code)
		})
	}
}

func TestHandlerRoutes(t *testing.T) {
	f := newFixture(t)
	api := startAPI(t, f, WithMaxRequestBody(1024))

	resp := api.do(t, http.MethodGet, JWTSVIDPath, "", "")
	require.Equal(t, http.StatusMethodNotAllowed, resp.status)
	require.Equal(t, http.MethodPost, resp.header.Get("Allow"))
	require.Equal(t, CodeInvalidRequest, resp.body.Error.Code)

	resp = api.do(t, http.MethodPost, "/v1/verify/oidc", "application/json", `{}`)
	require.Equal(t, http.StatusNotFound, resp.status)

	resp = api.do(t, http.MethodPost, X509SVIDPath, "application/x-pem-file",
		strings.Repeat("a", 1025))
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.status)
	require.Contains(t, resp.body.Error.Message, "1024 bytes")
}

func TestHandlerRejectsOtherMethods(t *testing.T) {
	f := newFixture(t)
	api := startAPI(t, f)
	for _, path := range []string{JWTSVIDPath, X509SVIDPath} {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodPatch,
			http.MethodDelete, http.MethodOptions} {
			t.Run(method+" "+path, func(t *testing.T) {
				resp := api.do(t, method, path, "application/json", `{}`)
				require.Equal(t, http.StatusMethodNotAllowed, resp.status)
				require.Equal(t, http.MethodPost, resp.header.Get("Allow"))
				require.NotNil(t, resp.body.Error)
				require.Equal(t, CodeInvalidRequest, resp.body.Error.Code)
				require.Contains(t, resp.body.Error.Message, "method "+method+
					" is not allowed on "+path+"; use POST")
			})
		}
	}
}

// TestHandlerRejectsUncleanPaths checks that a path that only cleans to a route
// gets the API's JSON 404 and no redirect, which net/http's ServeMux would send.
func TestHandlerRejectsUncleanPaths(t *testing.T) {
	f := newFixture(t)
	api := startAPI(t, f)
	token := f.orgB.mint(t, claims(f.orgB.id("/billing/api"), f.now))
	body := jsonBody(t, map[string]any{"token": token, "audience": "billing"})
	for _, path := range []string{
		"/" + JWTSVIDPath,
		"/v1/verify/../verify/jwt-svid",
		"/v1/verify/./jwt-svid",
		"/v1//verify/jwt-svid",
		JWTSVIDPath + "/",
		"/v1/verify%2Fjwt-svid",
		"/v1/verify/" + "x509-svid/../jwt-svid",
	} {
		t.Run(path, func(t *testing.T) {
			resp := api.do(t, http.MethodPost, path, "application/json", body)
			require.Equal(t, http.StatusNotFound, resp.status)
			require.Empty(t, resp.header.Get("Location"))
			require.False(t, resp.body.Valid)
			require.NotNil(t, resp.body.Error)
			require.Equal(t, CodeInvalidRequest, resp.body.Error.Code)
			require.Contains(t, resp.body.Error.Message, path)
			require.Contains(t, resp.body.Error.Message, JWTSVIDPath)
		})
	}
}

func TestHandlerLogsWithoutTokens(t *testing.T) {
	f := newFixture(t)
	api := startAPI(t, f)
	valid := f.orgB.mint(t, claims(f.orgB.id("/billing/api"), f.now))
	rejected := f.orgA.mint(t, claims(f.orgA.id("/admin"), f.now))
	for _, token := range []string{valid, rejected} {
		api.do(t, http.MethodPost, JWTSVIDPath, "application/json",
			jsonBody(t, map[string]any{"token": token, "audience": "billing"}))
	}
	logs := api.logs.String()
	require.Contains(t, logs, "credential verified")
	require.Contains(t, logs, "spiffe_id=spiffe://org-b.test/billing/api")
	require.Contains(t, logs, "credential rejected")
	require.Contains(t, logs, "code=id_not_allowed")
	require.Contains(t, logs, "spiffe_id=spiffe://org-a.test/admin")
	for _, token := range []string{valid, rejected} {
		for _, part := range strings.Split(token, ".") {
			require.NotContains(t, logs, part)
		}
	}
}

func TestLogLimiter(t *testing.T) {
	limiter := newLogLimiter(2)
	start := time.Now()
	for i := range 2 {
		allowed, suppressed := limiter.allow(start)
		require.True(t, allowed, "event %d", i)
		require.Zero(t, suppressed)
	}
	allowed, _ := limiter.allow(start.Add(500 * time.Millisecond))
	require.False(t, allowed)
	allowed, _ = limiter.allow(start.Add(900 * time.Millisecond))
	require.False(t, allowed)
	allowed, suppressed := limiter.allow(start.Add(time.Second))
	require.True(t, allowed)
	require.Equal(t, 2, suppressed)
}
