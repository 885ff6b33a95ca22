package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clientTestTime is the fixed timestamp of every object clientTestBackend returns.
var clientTestTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clientTestBackend records each call as "<method> <trust domain>" and returns
// objects built from its arguments, so that a test can check both the request the
// server received and the value the client decoded.
type clientTestBackend struct {
	mu      sync.Mutex
	calls   []string
	setReq  SetBundleRequest
	relReq  RelationshipRequest
	failure error
}

func (b *clientTestBackend) record(call string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, call)
	return b.failure
}

func (b *clientTestBackend) lastCall() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.calls) == 0 {
		return ""
	}
	return b.calls[len(b.calls)-1]
}

func clientTestBundle(td string) Bundle {
	return Bundle{TrustDomain: td, Sequence: 7, HasSequence: true, X509Keys: 1,
		Source: "operator", UpdatedAt: clientTestTime,
		Document: json.RawMessage(`{"keys":[],"spiffe_sequence":7}`)}
}

func clientTestRelationship(td string) Relationship {
	return Relationship{TrustDomain: td, BundleEndpointURL: "https://" + td + "/bundle",
		Profile: "https_web", CreatedAt: clientTestTime,
		Status: PeerStatus{HasBundle: true, StoredSequence: 3, LastSuccess: clientTestTime}}
}

func (b *clientTestBackend) Status(context.Context) Status {
	_ = b.record("Status")
	return Status{NodeName: "node-1", TrustDomain: "example.org", Ready: true,
		LastContact: clientTestTime}
}

func (b *clientTestBackend) LocalBundle(context.Context) (Bundle, error) {
	return clientTestBundle("example.org"), b.record("LocalBundle")
}

func (b *clientTestBackend) Bundles(context.Context) ([]Bundle, error) {
	return []Bundle{clientTestBundle("a.test"), clientTestBundle("b.test")}, b.record("Bundles")
}

func (b *clientTestBackend) Bundle(_ context.Context, td string) (Bundle, error) {
	return clientTestBundle(td), b.record("Bundle " + td)
}

func (b *clientTestBackend) SetBundle(_ context.Context, td string,
	req SetBundleRequest) (Bundle, error) {
	b.mu.Lock()
	b.setReq = req
	b.mu.Unlock()
	return clientTestBundle(td), b.record("SetBundle " + td)
}

func (b *clientTestBackend) DeleteBundle(_ context.Context, td string) error {
	return b.record("DeleteBundle " + td)
}

func (b *clientTestBackend) Relationships(context.Context) ([]Relationship, error) {
	return []Relationship{clientTestRelationship("a.test")}, b.record("Relationships")
}

func (b *clientTestBackend) Relationship(_ context.Context, td string) (Relationship, error) {
	return clientTestRelationship(td), b.record("Relationship " + td)
}

func (b *clientTestBackend) CreateRelationship(_ context.Context,
	req RelationshipRequest) (Relationship, error) {
	b.mu.Lock()
	b.relReq = req
	b.mu.Unlock()
	return clientTestRelationship(req.TrustDomain), b.record("CreateRelationship")
}

func (b *clientTestBackend) UpdateRelationship(_ context.Context, td string,
	req RelationshipRequest) (Relationship, error) {
	b.mu.Lock()
	b.relReq = req
	b.mu.Unlock()
	return clientTestRelationship(td), b.record("UpdateRelationship " + td)
}

func (b *clientTestBackend) DeleteRelationship(_ context.Context, td string) error {
	return b.record("DeleteRelationship " + td)
}

func (b *clientTestBackend) RefreshRelationship(_ context.Context,
	td string) (Relationship, error) {
	return clientTestRelationship(td), b.record("RefreshRelationship " + td)
}

func (b *clientTestBackend) RotateAuthority(context.Context) (Bundle, error) {
	return clientTestBundle("example.org"), b.record("RotateAuthority")
}

func (b *clientTestBackend) MintX509SVID(_ context.Context,
	req MintX509SVIDRequest) (X509SVID, error) {
	svid := X509SVID{SPIFFEID: req.SPIFFEID, CertsPEM: "certs", KeyPEM: "key",
		ExpiresAt: clientTestTime.Add(time.Duration(req.TTLSeconds) * time.Second)}
	return svid, b.record("MintX509SVID " + req.SPIFFEID)
}

func (b *clientTestBackend) MintJWTSVID(_ context.Context,
	req MintJWTSVIDRequest) (JWTSVID, error) {
	svid := JWTSVID{SPIFFEID: req.SPIFFEID, Token: strings.Join(req.Audience, ","),
		ExpiresAt: clientTestTime.Add(time.Duration(req.TTLSeconds) * time.Second)}
	return svid, b.record("MintJWTSVID " + req.SPIFFEID)
}

// startClientTestServer serves backend with the real admin Server on a socket in
// a temporary directory and returns a client for it.
func startClientTestServer(t *testing.T, backend Backend) *Client {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.sock")
	srv := NewServer(path, backend, slog.New(slog.DiscardHandler))
	require.NoError(t, srv.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	})
	return NewClient(path, 10*time.Second)
}

// startRawSocketServer serves handler on a socket in a temporary directory, for
// responses that the admin Server never sends.
func startRawSocketServer(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "raw.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return path
}

func TestClientCallsEveryRoute(t *testing.T) {
	backend := &clientTestBackend{}
	client := startClientTestServer(t, backend)
	ctx := context.Background()

	tests := []struct {
		name     string
		call     func() (any, error)
		wantCall string
		want     any
	}{
		{"status returns node status", func() (any, error) { return client.Status(ctx) },
			"Status", Status{NodeName: "node-1", TrustDomain: "example.org", Ready: true,
				LastContact: clientTestTime}},
		{"local bundle decodes document",
			func() (any, error) { return client.LocalBundle(ctx) },
			"LocalBundle", clientTestBundle("example.org")},
		{"bundles returns every bundle", func() (any, error) { return client.Bundles(ctx) },
			"Bundles", []Bundle{clientTestBundle("a.test"), clientTestBundle("b.test")}},
		{"bundle gets one domain",
			func() (any, error) { return client.Bundle(ctx, "org-b.test") },
			"Bundle org-b.test", clientTestBundle("org-b.test")},
		{"set bundle puts override", func() (any, error) {
			return client.SetBundle(ctx, "org-b.test", SetBundleRequest{Format: "pem", Data: "x"})
		}, "SetBundle org-b.test", clientTestBundle("org-b.test")},
		{"relationships lists all",
			func() (any, error) { return client.Relationships(ctx) },
			"Relationships", []Relationship{clientTestRelationship("a.test")}},
		{"relationship gets one domain",
			func() (any, error) { return client.Relationship(ctx, "org-b.test") },
			"Relationship org-b.test", clientTestRelationship("org-b.test")},
		{"create relationship posts request", func() (any, error) {
			return client.CreateRelationship(ctx, RelationshipRequest{TrustDomain: "c.test"})
		}, "CreateRelationship", clientTestRelationship("c.test")},
		{"update relationship puts request", func() (any, error) {
			return client.UpdateRelationship(ctx, "c.test", RelationshipRequest{Profile: "https_web"})
		}, "UpdateRelationship c.test", clientTestRelationship("c.test")},
		{"refresh relationship posts refresh",
			func() (any, error) { return client.RefreshRelationship(ctx, "c.test") },
			"RefreshRelationship c.test", clientTestRelationship("c.test")},
		{"mint X509-SVID posts request", func() (any, error) {
			return client.MintX509SVID(ctx, MintX509SVIDRequest{
				SPIFFEID: "spiffe://example.org/w", TTLSeconds: 60})
		}, "MintX509SVID spiffe://example.org/w", X509SVID{SPIFFEID: "spiffe://example.org/w",
			CertsPEM: "certs", KeyPEM: "key", ExpiresAt: clientTestTime.Add(time.Minute)}},
		{"mint JWT-SVID posts request", func() (any, error) {
			return client.MintJWTSVID(ctx, MintJWTSVIDRequest{
				SPIFFEID: "spiffe://example.org/w", Audience: []string{"a", "b"}, TTLSeconds: 60})
		}, "MintJWTSVID spiffe://example.org/w", JWTSVID{SPIFFEID: "spiffe://example.org/w",
			Token: "a,b", ExpiresAt: clientTestTime.Add(time.Minute)}},
		{"rotate authority returns bundle",
			func() (any, error) { return client.RotateAuthority(ctx) },
			"RotateAuthority", clientTestBundle("example.org")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			require.NoError(t, err)
			require.Equal(t, tt.wantCall, backend.lastCall())
			require.Equal(t, normalizeJSON(t, tt.want), normalizeJSON(t, got))
		})
	}
}

// normalizeJSON round-trips v through JSON so that RawMessage spacing and time
// locations do not make equal values differ.
func normalizeJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return string(data)
}

func TestClientSendsRequestBodies(t *testing.T) {
	backend := &clientTestBackend{}
	client := startClientTestServer(t, backend)
	ctx := context.Background()

	setReq := SetBundleRequest{Format: "spiffe", Data: `{"keys":[]}`}
	_, err := client.SetBundle(ctx, "org-b.test", setReq)
	require.NoError(t, err)
	require.Equal(t, setReq, backend.setReq)

	relReq := RelationshipRequest{TrustDomain: "org-b.test",
		BundleEndpointURL: "https://org-b.test/", Profile: "https_spiffe",
		EndpointSPIFFEID: "spiffe://org-b.test/bundlex", CAPEM: "pem",
		AllowedIDPrefixes: []string{"spiffe://org-b.test/ns/"},
		Bootstrap:         `{"keys":[]}`, BootstrapFormat: "spiffe"}
	_, err = client.CreateRelationship(ctx, relReq)
	require.NoError(t, err)
	require.Equal(t, relReq, backend.relReq)
}

func TestClientDeletesWithoutBody(t *testing.T) {
	backend := &clientTestBackend{}
	client := startClientTestServer(t, backend)
	ctx := context.Background()

	require.NoError(t, client.DeleteBundle(ctx, "org-b.test"))
	require.Equal(t, "DeleteBundle org-b.test", backend.lastCall())
	require.NoError(t, client.DeleteRelationship(ctx, "org-b.test"))
	require.Equal(t, "DeleteRelationship org-b.test", backend.lastCall())
}

func TestClientEscapesPathSegments(t *testing.T) {
	backend := &clientTestBackend{}
	client := startClientTestServer(t, backend)

	for _, td := range []string{"a/b", "a b?c#d", "%2F", "a/../b"} {
		t.Run("escapes "+td, func(t *testing.T) {
			got, err := client.Bundle(context.Background(), td)
			require.NoError(t, err)
			require.Equal(t, "Bundle "+td, backend.lastCall())
			require.Equal(t, td, got.TrustDomain)

			_, err = client.RefreshRelationship(context.Background(), td)
			require.NoError(t, err)
			require.Equal(t, "RefreshRelationship "+td, backend.lastCall())
		})
	}
}

func TestClientRejectsDotSegments(t *testing.T) {
	backend := &clientTestBackend{}
	client := startClientTestServer(t, backend)

	for _, td := range []string{"", ".", ".."} {
		t.Run(fmt.Sprintf("rejects %q", td), func(t *testing.T) {
			err := client.DeleteBundle(context.Background(), td)
			require.EqualError(t, err, fmt.Sprintf(
				"admin: invalid trust domain %q: pass a name such as example.org", td))
			require.Empty(t, backend.lastCall())
		})
	}
}

func TestClientReturnsAPIError(t *testing.T) {
	backend := &clientTestBackend{failure: Errorf(CodeNotFound,
		"no bundle for org-b.test; list bundles with `bundlex bundle list`")}
	client := startClientTestServer(t, backend)

	_, err := client.Bundle(context.Background(), "org-b.test")
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusNotFound, apiErr.Status)
	require.Equal(t, CodeNotFound, apiErr.Code)
	require.EqualError(t, err, "no bundle for org-b.test; list bundles with `bundlex bundle list`")
}

func TestClientUnknownRouteIsAPIError(t *testing.T) {
	client := startClientTestServer(t, &clientTestBackend{})

	err := client.do(context.Background(), http.MethodGet, "/v1/nothing", nil, nil)
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusNotFound, apiErr.Status)
	require.Equal(t, CodeNotFound, apiErr.Code)
	require.Contains(t, apiErr.Message, "/v1/nothing")
}

func TestClientMissingSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.sock")
	client := NewClient(path, 5*time.Second)

	_, err := client.Status(context.Background())
	require.EqualError(t, err, "admin: cannot reach the node at "+path+": dial unix "+path+
		": connect: no such file or directory; is `bundlex server` running, "+
		"and is --socket right?")
}

func TestClientMalformedResponses(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		check   func(t *testing.T, err error)
	}{
		{"error without JSON body", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "upstream broke", http.StatusBadGateway)
		}, func(t *testing.T, err error) {
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, http.StatusBadGateway, apiErr.Status)
			require.Empty(t, apiErr.Code)
			require.Equal(t, `admin: GET /v1/status: the node returned HTTP 502 without an `+
				`error message (body "upstream broke"); check the node's log`, apiErr.Message)
		}},
		{"success with invalid JSON", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("not json"))
		}, func(t *testing.T, err error) {
			require.ErrorContains(t, err, "admin: GET /v1/status: invalid JSON in the response")
		}},
		{"redirect is not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/v1/elsewhere", http.StatusMovedPermanently)
		}, func(t *testing.T, err error) {
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, http.StatusMovedPermanently, apiErr.Status)
		}},
		{"response over the limit", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`"`))
			_, _ = w.Write([]byte(strings.Repeat("a", MaxResponseBody)))
		}, func(t *testing.T, err error) {
			require.ErrorContains(t, err, "response is larger than MaxResponseBody")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := NewClient(startRawSocketServer(t, tt.handler), 10*time.Second)
			_, err := client.Status(context.Background())
			require.Error(t, err)
			tt.check(t, err)
		})
	}
}

func TestClientTimesOut(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	path := startRawSocketServer(t, func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	client := NewClient(path, 200*time.Millisecond)

	_, err := client.Relationships(context.Background())
	require.ErrorContains(t, err, "admin: GET /v1/relationships on "+path+
		" timed out (client timeout 200ms)")
	require.ErrorContains(t, err, "raise --timeout")
}

func TestClientHonorsCanceledContext(t *testing.T) {
	client := startClientTestServer(t, &clientTestBackend{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	_, err := client.Status(ctx)
	require.True(t, errors.Is(err, context.Canceled), "error %v", err)
}
