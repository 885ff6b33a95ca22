package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/hashicorp/go-hclog"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/config"
	"github.com/bundlex/bundlex/internal/verify"
	"github.com/bundlex/bundlex/raft"
)

// waitLimit bounds the waits for Raft elections in these tests.
const waitLimit = 30 * time.Second

// storeNode returns a node around a real single-node Raft store. With bootstrap
// false the store never learns of a leader, so its state never becomes current.
func storeNode(t *testing.T, bootstrap bool) *Node {
	t.Helper()
	store, err := raft.Open(raft.Config{
		NodeID:             "n1",
		DataDir:            t.TempDir(),
		BindAddr:           "127.0.0.1:0",
		Bootstrap:          bootstrap,
		Logger:             hclog.NewNullLogger(),
		HeartbeatTimeout:   100 * time.Millisecond,
		ElectionTimeout:    100 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	n := &Node{cfg: config.Default(), store: store, log: slog.New(slog.DiscardHandler),
		td: spiffeid.RequireTrustDomainFromString("org-a.test")}
	n.views = &viewCache{n: n}
	return n
}

func waitCurrent(t *testing.T, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(t, n.store.WaitCurrent(ctx))
}

// signJWT signs a JWT-SVID for sub with a new key that no bundle contains.
func signJWT(t *testing.T, sub, audience string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	require.NoError(t, err)
	now := time.Now()
	token, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: sub,
		Audience: jwt.Audience{audience}, IssuedAt: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}).Serialize()
	require.NoError(t, err)
	return token
}

func TestGatesBeforeStateIsCurrent(t *testing.T) {
	n := storeNode(t, false)
	reached := false
	inner := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true })

	t.Run("bundle endpoint", func(t *testing.T) {
		rec := httptest.NewRecorder()
		n.gateEndpoint(inner).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		require.False(t, reached, "the handler must not run")
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		require.Equal(t, "1", rec.Header().Get("Retry-After"))
		require.Contains(t, rec.Body.String(), "no Raft leader is known yet")
	})
	t.Run("verify API", func(t *testing.T) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, verify.JWTSVIDPath,
			strings.NewReader(`{"token":"x","audience":"a"}`))
		n.gateVerify(inner).ServeHTTP(rec, req)
		require.False(t, reached, "the handler must not run")
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		require.Equal(t, "1", rec.Header().Get("Retry-After"))
		require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
		var resp verify.Response
		require.NoError(t, json.NewDecoder(rec.Body).Decode(&resp))
		require.False(t, resp.Valid)
		require.NotNil(t, resp.Error)
		require.Equal(t, "not_ready", resp.Error.Code)
		require.Contains(t, resp.Error.Message, "retry after 1s")
	})
	t.Run("workload API and file output", func(t *testing.T) {
		require.Nil(t, workloadSource{n: n}.Snapshot())
		_, _, err := jwtValidator{n: n}.ValidateJWTSVID("token", "audience")
		require.ErrorIs(t, err, errNotCurrent)
	})
	t.Run("readiness", func(t *testing.T) {
		err := n.Ready()
		require.ErrorContains(t, err, "replicated state not current yet: no Raft leader "+
			"is known yet")
	})
}

func TestGatesOpenOnceCurrent(t *testing.T) {
	n := storeNode(t, true)
	waitCurrent(t, n)
	inner := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "inner")
	})
	for name, gate := range map[string]func(http.Handler) http.Handler{
		"bundle endpoint": n.gateEndpoint, "verify API": n.gateVerify} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			gate(inner).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, "inner", rec.Body.String())
			require.Empty(t, rec.Header().Get("Retry-After"))
		})
	}
	require.NotNil(t, workloadSource{n: n}.Snapshot())
}

func TestVerifyRelationshipWithoutBundle(t *testing.T) {
	n := storeNode(t, true)
	waitCurrent(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(t, n.store.Apply(ctx, raft.CreateRelationship{
		Relationship: raft.Relationship{
			TrustDomain:       "org-b.test",
			BundleEndpointURL: "https://127.0.0.1:1/",
			Profile:           config.ProfileHTTPSWeb,
		}}))
	verifier, err := verify.NewVerifier(verify.TrustFunc(func() *verify.Trust {
		return n.views.get().trust
	}))
	require.NoError(t, err)

	t.Run("verify API", func(t *testing.T) {
		_, err := verifier.VerifyJWTSVID(signJWT(t, "spiffe://org-b.test/w", "a"),
			[]string{"a"})
		require.Equal(t, verify.CodeNoBundle, verify.ErrorCode(err), "error: %v", err)
		require.ErrorContains(t, err, `no bundle of federated trust domain "org-b.test" `+
			"has been fetched yet")
	})
	t.Run("workload API", func(t *testing.T) {
		_, _, err := jwtValidator{n: n, v: verifier}.ValidateJWTSVID(
			signJWT(t, "spiffe://org-b.test/w", "a"), "a")
		require.ErrorContains(t, err, `no bundle of federated trust domain "org-b.test" `+
			"has been fetched yet")
	})
	t.Run("trust domain without relationship", func(t *testing.T) {
		_, err := verifier.VerifyJWTSVID(signJWT(t, "spiffe://org-c.test/w", "a"),
			[]string{"a"})
		require.Equal(t, verify.CodeUnknownTrustDomain, verify.ErrorCode(err))
	})
	t.Run("workload bundles leave it out", func(t *testing.T) {
		snapshot := workloadSource{n: n}.Snapshot()
		require.NotNil(t, snapshot)
		require.Empty(t, snapshot.Bundles())
	})
}
