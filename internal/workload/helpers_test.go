package workload

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/internal/testutil"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// waitTimeout is the generous deadline for conditions that a healthy run meets
// in milliseconds.
const waitTimeout = 30 * time.Second

var (
	tdLocal = spiffeid.RequireTrustDomainFromString("org-a.test")
	tdB     = spiffeid.RequireTrustDomainFromString("org-b.test")
	tdC     = spiffeid.RequireTrustDomainFromString("org-c.test")
)

// newCA returns a self-signed EC P-256 CA certificate for td.
func newCA(tb testing.TB, td spiffeid.TrustDomain) *x509.Certificate {
	return testutil.NewCA(tb, td)
}

// jwtKey is a JWT-SVID signing key with its public half for a bundle.
type jwtKey struct {
	authority bundle.JWTAuthority
	private   crypto.Signer
}

func newJWTKey(tb testing.TB, kid string) jwtKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	return jwtKey{authority: bundle.JWTAuthority{KeyID: kid, PublicKey: &key.PublicKey}, private: key}
}

// sign returns a JWT-SVID for id with the given audience, valid for an hour.
func (k jwtKey) sign(tb testing.TB, id string, audience ...string) string {
	tb.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.ES256,
		Key:       jose.JSONWebKey{Key: k.private, KeyID: k.authority.KeyID},
	}, (&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(tb, err)
	token, err := jwt.Signed(signer).Claims(jwt.Claims{
		Subject:  id,
		Audience: audience,
		Expiry:   jwt.NewNumericDate(time.Now().Add(time.Hour)),
		IssuedAt: jwt.NewNumericDate(time.Now()),
	}).Claims(map[string]any{"groups": []string{"ops", "dev"}}).Serialize()
	require.NoError(tb, err)
	return token
}

func newBundle(td spiffeid.TrustDomain, certs []*x509.Certificate, keys ...jwtKey) *bundle.Bundle {
	b := bundle.New(td)
	b.X509Authorities = append(b.X509Authorities, certs...)
	for _, key := range keys {
		b.JWTAuthorities = append(b.JWTAuthorities, key.authority)
	}
	return b
}

// sourceValidator validates JWT-SVIDs with go-spiffe against the JWT bundles of
// a Source, as the node's verifier does with its own rules.
type sourceValidator struct{ source Source }

func (v sourceValidator) ValidateJWTSVID(token, audience string) (string, map[string]any, error) {
	set := jwtbundle.NewSet()
	for _, b := range v.source.Snapshot().Bundles() {
		set.Add(b.JWTBundle())
	}
	svid, err := jwtsvid.ParseAndValidate(token, set, []string{audience})
	if err != nil {
		return "", nil, err
	}
	return svid.ID.String(), svid.Claims, nil
}

// testServer is a Server on a Unix socket in a fresh directory.
type testServer struct {
	*Server
	socket  string
	served  chan error
	stopped bool
}

// startServer serves src on a socket in a short temporary directory, because
// a Unix socket path is limited to about 100 bytes and t.TempDir paths carry
// the test name.
func startServer(tb testing.TB, src Source, validator JWTValidator) *testServer {
	tb.Helper()
	return startServerWith(tb, Config{Source: src, Validator: validator})
}

// startServerWith is startServer with a whole Config. A nil Validator
// validates against cfg.Source.
func startServerWith(tb testing.TB, cfg Config) *testServer {
	tb.Helper()
	dir, err := os.MkdirTemp("", "wl")
	require.NoError(tb, err)
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if cfg.Validator == nil {
		cfg.Validator = sourceValidator{source: cfg.Source}
	}
	srv, err := NewServer(cfg)
	require.NoError(tb, err)
	ts := &testServer{Server: srv, socket: filepath.Join(dir, "workload.sock"),
		served: make(chan error, 1)}
	lis, err := ListenUnix(ts.socket)
	require.NoError(tb, err)
	go func() { ts.served <- srv.ServeListener(lis) }()
	tb.Cleanup(func() {
		if !ts.stopped {
			ts.stop(tb)
		}
	})
	return ts
}

func (ts *testServer) addr() string { return "unix://" + ts.socket }

// stop stops the server and checks that Serve returned without error.
func (ts *testServer) stop(tb testing.TB) {
	tb.Helper()
	ts.stopped = true
	ts.Stop()
	select {
	case err := <-ts.served:
		require.NoError(tb, err)
	case <-time.After(waitTimeout):
		tb.Fatal("Serve did not return after Stop")
	}
}

// rawClient returns a plain gRPC client for requests that go-spiffe would not
// send, such as a request without the security header.
func rawClient(t *testing.T, ts *testServer) workload.SpiffeWorkloadAPIClient {
	t.Helper()
	conn, err := grpc.NewClient(ts.addr(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return workload.NewSpiffeWorkloadAPIClient(conn)
}

// withHeader adds the SPIFFE security header to ctx.
func withHeader(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, securityHeaderKey, securityHeaderValue)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}
