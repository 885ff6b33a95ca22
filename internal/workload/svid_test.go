package workload

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/config"
	"github.com/bundlex/bundlex/internal/authority"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// svidFixture is a real built-in authority of org-a.test and a source whose
// local bundle contains its keys, federated with org-b.test (a CA and a JWT
// key) and org-c.test (a JWT key only).
type svidFixture struct {
	authority *authority.Builtin
	caB       *x509.Certificate
	keyB      jwtKey
	keyC      jwtKey
	source    *MemorySource

	mu     sync.Mutex
	issued map[string]int
}

func newSVIDFixture(t *testing.T) *svidFixture {
	t.Helper()
	builtin, err := authority.OpenBuiltin(authority.BuiltinConfig{
		Dir:         filepath.Join(t.TempDir(), "authority"),
		TrustDomain: tdLocal,
	})
	require.NoError(t, err)
	_, err = builtin.Tick()
	require.NoError(t, err)
	f := &svidFixture{authority: builtin, caB: newCA(t, tdB), keyB: newJWTKey(t, "b1"),
		keyC: newJWTKey(t, "c1"), issued: map[string]int{}}
	f.source = NewMemorySource(f.snapshot(1, f.caB))
	return f
}

// localBundle returns the bundle that the node would publish for the
// authority's current keys.
func (f *svidFixture) localBundle() *bundle.Bundle {
	keys := f.authority.PublicKeys()
	b := bundle.New(tdLocal)
	b.X509Authorities = append(b.X509Authorities, keys.X509Authorities...)
	for kid, pub := range keys.JWTAuthorities {
		b.JWTAuthorities = append(b.JWTAuthorities, bundle.JWTAuthority{KeyID: kid,
			PublicKey: pub})
	}
	return b
}

// snapshot returns the local bundle with org-b.test signed by caB.
func (f *svidFixture) snapshot(version uint64, caB *x509.Certificate) *Snapshot {
	return &Snapshot{
		Version: version,
		Local:   f.localBundle(),
		Federated: map[spiffeid.TrustDomain]*bundle.Bundle{
			tdB: newBundle(tdB, []*x509.Certificate{caB}, f.keyB),
			tdC: newBundle(tdC, nil, f.keyC),
		},
	}
}

// svidConfig issues /workload/uid/{uid} for ttl, as the node does with that
// template.
func (f *svidFixture) svidConfig(t *testing.T, ttl time.Duration) *SVIDConfig {
	t.Helper()
	template, err := config.ParseIDPathTemplate("/workload/uid/{uid}")
	require.NoError(t, err)
	return &SVIDConfig{
		Issuer: f.authority,
		IDFor: func(c Caller) (spiffeid.ID, error) {
			return spiffeid.FromPath(tdLocal, template.Expand(c.UID, c.GID))
		},
		TTL: ttl,
		Issued: func(svidType string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.issued[svidType]++
		},
	}
}

func (f *svidFixture) issuedCount(svidType string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issued[svidType]
}

// start serves the fixture's source with SVIDs for ttl. A non-nil modify
// changes the SVID settings first.
func (f *svidFixture) start(t *testing.T, ttl time.Duration,
	modify func(*SVIDConfig)) *testServer {
	t.Helper()
	svids := f.svidConfig(t, ttl)
	if modify != nil {
		modify(svids)
	}
	return startServerWith(t, Config{Source: f.source, SVIDs: svids})
}

// callerID is the SPIFFE ID that the template gives this test process.
func callerID() spiffeid.ID {
	return spiffeid.RequireFromPathf(tdLocal, "/workload/uid/%d", os.Getuid())
}

func clientOptions(ts *testServer) workloadapi.SourceOption {
	return workloadapi.WithClientOptions(workloadapi.WithAddr(ts.addr()))
}

func TestBundleSourceWithSVIDs(t *testing.T) {
	f := newSVIDFixture(t)
	ts := f.start(t, time.Hour, nil)
	ctx := testContext(t)
	source, err := workloadapi.NewBundleSource(ctx, clientOptions(ts))
	require.NoError(t, err)
	t.Cleanup(func() { source.Close() })

	local, err := source.GetX509BundleForTrustDomain(tdLocal)
	require.NoError(t, err)
	requireSameCerts(t, f.authority.PublicKeys().X509Authorities, local.X509Authorities())
	peerB, err := source.GetX509BundleForTrustDomain(tdB)
	require.NoError(t, err)
	requireSameCerts(t, []*x509.Certificate{f.caB}, peerB.X509Authorities())
	localJWT, err := source.GetJWTBundleForTrustDomain(tdLocal)
	require.NoError(t, err)
	for kid := range f.authority.PublicKeys().JWTAuthorities {
		_, ok := localJWT.FindJWTAuthority(kid)
		require.True(t, ok, "local JWT key %s", kid)
	}
	peerC, err := source.GetJWTBundleForTrustDomain(tdC)
	require.NoError(t, err)
	_, ok := peerC.FindJWTAuthority("c1")
	require.True(t, ok, "JWT key of org-c.test")

	// A change of a federated bundle reaches the source without a new SVID.
	rotatedB := newCA(t, tdB)
	f.source.Set(f.snapshot(2, rotatedB))
	deadline := time.After(waitTimeout)
	for {
		got, err := source.GetX509BundleForTrustDomain(tdB)
		require.NoError(t, err)
		if got.HasX509Authority(rotatedB) {
			break
		}
		select {
		case <-source.Updated():
		case <-deadline:
			t.Fatal("the bundle source never received the rotated org-b.test bundle")
		}
	}
	require.Equal(t, 1, f.issuedCount(SVIDTypeX509), "a bundle change keeps the SVID")
}

func TestX509SourceGetsCallerSVID(t *testing.T) {
	f := newSVIDFixture(t)
	ts := f.start(t, 30*time.Minute, nil)
	ctx := testContext(t)
	source, err := workloadapi.NewX509Source(ctx, clientOptions(ts))
	require.NoError(t, err)
	t.Cleanup(func() { source.Close() })

	svid, err := source.GetX509SVID()
	require.NoError(t, err)
	require.Equal(t, callerID(), svid.ID)
	localBundle := x509bundle.FromX509Authorities(tdLocal, f.authority.PublicKeys().X509Authorities)
	id, _, err := x509svid.Verify(svid.Certificates, localBundle)
	require.NoError(t, err)
	require.Equal(t, callerID(), id)
	require.WithinDuration(t, time.Now().Add(30*time.Minute), svid.Certificates[0].NotAfter,
		time.Minute)
	require.Equal(t, 1, f.issuedCount(SVIDTypeX509))
}

func TestX509SVIDResponseFields(t *testing.T) {
	f := newSVIDFixture(t)
	ts := f.start(t, time.Hour, nil)
	stream, err := rawClient(t, ts).FetchX509SVID(withHeader(testContext(t)),
		&workload.X509SVIDRequest{})
	require.NoError(t, err)
	resp, err := stream.Recv()
	require.NoError(t, err)

	require.Len(t, resp.GetSvids(), 1)
	msg := resp.GetSvids()[0]
	require.Equal(t, callerID().String(), msg.GetSpiffeId())
	require.Empty(t, msg.GetHint())
	svid, err := x509svid.ParseRaw(msg.GetX509Svid(), msg.GetX509SvidKey())
	require.NoError(t, err, "DER chain and PKCS#8 key")
	require.Equal(t, callerID(), svid.ID)
	localCAs, err := x509.ParseCertificates(msg.GetBundle())
	require.NoError(t, err)
	requireSameCerts(t, f.authority.PublicKeys().X509Authorities, localCAs)

	require.Len(t, resp.GetFederatedBundles(), 2, "org-b.test and org-c.test, not the local one")
	caB, err := x509.ParseCertificates(resp.GetFederatedBundles()[tdB.IDString()])
	require.NoError(t, err)
	requireSameCerts(t, []*x509.Certificate{f.caB}, caB)
	c, ok := resp.GetFederatedBundles()[tdC.IDString()]
	require.True(t, ok, "org-c.test has a federated entry")
	require.Empty(t, c, "org-c.test has no X.509 authorities")
}

func TestX509SVIDRenewedAtHalfLife(t *testing.T) {
	const ttl = 4 * time.Second
	f := newSVIDFixture(t)
	ts := f.start(t, ttl, nil)
	ctx := testContext(t)
	source, err := workloadapi.NewX509Source(ctx, clientOptions(ts))
	require.NoError(t, err)
	t.Cleanup(func() { source.Close() })
	first, err := source.GetX509SVID()
	require.NoError(t, err)

	var renewed *x509svid.SVID
	var renewedAt time.Time
	deadline := time.After(waitTimeout)
	for renewed == nil {
		select {
		case <-source.Updated():
		case <-deadline:
			t.Fatal("the X509-SVID was not renewed")
		}
		svid, err := source.GetX509SVID()
		require.NoError(t, err)
		if svid.Certificates[0].SerialNumber.Cmp(first.Certificates[0].SerialNumber) != 0 {
			renewed, renewedAt = svid, time.Now()
		}
	}
	require.Equal(t, callerID(), renewed.ID)
	firstKey, ok := first.PrivateKey.Public().(*ecdsa.PublicKey)
	require.True(t, ok, "key type %T", first.PrivateKey.Public())
	require.False(t, firstKey.Equal(renewed.PrivateKey.Public()), "each SVID has a new key")
	localBundle := x509bundle.FromX509Authorities(tdLocal, f.authority.PublicKeys().X509Authorities)
	_, _, err = x509svid.Verify(renewed.Certificates, localBundle)
	require.NoError(t, err)
	require.True(t, renewed.Certificates[0].NotAfter.After(first.Certificates[0].NotAfter))
	// The first SVID lives about ttl, and NotAfter has whole seconds, so half
	// of its lifetime ends no earlier than NotAfter minus ttl/2 and a second.
	require.False(t, renewedAt.Before(first.Certificates[0].NotAfter.Add(-ttl/2-time.Second)),
		"renewed before half of the lifetime")
	require.GreaterOrEqual(t, f.issuedCount(SVIDTypeX509), 2)
}

func TestFetchJWTSVIDValidates(t *testing.T) {
	f := newSVIDFixture(t)
	ts := f.start(t, time.Hour, nil)
	ctx := testContext(t)
	client, err := workloadapi.New(ctx, workloadapi.WithAddr(ts.addr()))
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })

	svid, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "db",
		ExtraAudiences: []string{"cache"}})
	require.NoError(t, err)
	require.Equal(t, callerID(), svid.ID)
	require.Equal(t, []string{"db", "cache"}, svid.Audience)
	// svid_ttl is an hour, but the authority's JWT-SVID maximum of 5 minutes wins.
	require.WithinDuration(t, time.Now().Add(authority.DefaultJWTSVIDMaxTTL), svid.Expiry,
		time.Minute)
	validated, err := client.ValidateJWTSVID(ctx, svid.Marshal(), "db")
	require.NoError(t, err)
	require.Equal(t, callerID(), validated.ID)
	require.Equal(t, 1, f.issuedCount(SVIDTypeJWT))

	own, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "db", Subject: callerID()})
	require.NoError(t, err, "a request for the caller's own ID")
	require.Equal(t, callerID(), own.ID)
}

func TestFetchJWTSVIDRejectsBadRequests(t *testing.T) {
	f := newSVIDFixture(t)
	ts := f.start(t, time.Hour, nil)
	client := rawClient(t, ts)
	other := spiffeid.RequireFromPath(tdLocal, "/workload/uid/4242").String()
	cases := []struct {
		name string
		req  *workload.JWTSVIDRequest
		code codes.Code
		want string
	}{
		{"audience missing", &workload.JWTSVIDRequest{}, codes.InvalidArgument,
			"audience must be specified"},
		{"empty audience value", &workload.JWTSVIDRequest{Audience: []string{"db", ""}},
			codes.InvalidArgument, `audience ["db" ""] contains an empty value`},
		{"another SPIFFE ID", &workload.JWTSVIDRequest{Audience: []string{"db"},
			SpiffeId: other}, codes.PermissionDenied, fmt.Sprintf("Unix user %d receives "+
			"%s and may not request a JWT-SVID for %s", os.Getuid(), callerID(), other)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.FetchJWTSVID(withHeader(testContext(t)), tc.req)
			requireStatus(t, err, tc.code, tc.want)
		})
	}
	require.Zero(t, f.issuedCount(SVIDTypeJWT))
}

func TestSVIDAllowedUIDs(t *testing.T) {
	uid := uint32(os.Getuid())
	t.Run("caller not listed", func(t *testing.T) {
		f := newSVIDFixture(t)
		ts := f.start(t, time.Hour, func(c *SVIDConfig) { c.AllowedUIDs = []uint32{uid + 1} })
		ctx := testContext(t)
		client, err := workloadapi.New(ctx, workloadapi.WithAddr(ts.addr()))
		require.NoError(t, err)
		t.Cleanup(func() { client.Close() })
		want := fmt.Sprintf("Unix user %d may not receive SVIDs: it is not in "+
			"workload_api.svid_allowed_uids", uid)
		_, err = client.FetchX509SVID(ctx)
		requireStatus(t, err, codes.PermissionDenied, want)
		_, err = client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "db"})
		requireStatus(t, err, codes.PermissionDenied, want)
		_, err = client.FetchX509Bundles(ctx)
		require.NoError(t, err, "bundles need no SVID permission")
		require.Zero(t, f.issuedCount(SVIDTypeX509)+f.issuedCount(SVIDTypeJWT))
	})
	t.Run("caller listed", func(t *testing.T) {
		f := newSVIDFixture(t)
		ts := f.start(t, time.Hour, func(c *SVIDConfig) { c.AllowedUIDs = []uint32{uid + 1, uid} })
		ctx := testContext(t)
		svid, err := workloadapi.FetchX509SVID(ctx, workloadapi.WithAddr(ts.addr()))
		require.NoError(t, err)
		require.Equal(t, callerID(), svid.ID)
	})
}

func TestSVIDsOverTCPDenied(t *testing.T) {
	f := newSVIDFixture(t)
	srv, err := NewServer(Config{Source: f.source, Validator: sourceValidator{f.source},
		SVIDs: f.svidConfig(t, time.Hour)})
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.ServeListener(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		require.NoError(t, <-served)
	})
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	client := workload.NewSpiffeWorkloadAPIClient(conn)
	ctx := withHeader(testContext(t))

	_, err = client.FetchJWTSVID(ctx, &workload.JWTSVIDRequest{Audience: []string{"db"}})
	requireStatus(t, err, codes.PermissionDenied, "read the caller's Unix credentials: "+
		"connection from 127.0.0.1:")
	requireStatus(t, err, codes.PermissionDenied, "is not a Unix socket connection")
	stream, err := client.FetchX509SVID(ctx, &workload.X509SVIDRequest{})
	require.NoError(t, err)
	_, err = stream.Recv()
	requireStatus(t, err, codes.PermissionDenied, "is not a Unix socket connection")
	bundles, err := client.FetchX509Bundles(ctx, &workload.X509BundlesRequest{})
	require.NoError(t, err)
	_, err = bundles.Recv()
	require.NoError(t, err, "the bundle RPCs need no caller credentials")
}

// syncBuffer is a bytes.Buffer safe for the server's logger and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// In a cluster, a node's new CA reaches the local bundle only after the
// leader publishes it. The stream must not send an SVID that the bundle in
// the same message cannot verify.
func TestX509SVIDWaitsForCAInBundle(t *testing.T) {
	f := newSVIDFixture(t)
	withoutCA := f.snapshot(1, f.caB)
	withoutCA.Local.X509Authorities = []*x509.Certificate{newCA(t, tdLocal)}
	f.source.Set(withoutCA)
	logs := &syncBuffer{}
	ts := startServerWith(t, Config{Source: f.source, SVIDs: f.svidConfig(t, time.Hour),
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	stream, err := rawClient(t, ts).FetchX509SVID(withHeader(testContext(t)),
		&workload.X509SVIDRequest{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "X509-SVID held back")
	}, waitTimeout, 10*time.Millisecond)

	f.source.Set(f.snapshot(2, f.caB))
	resp, err := stream.Recv()
	require.NoError(t, err)
	msg := resp.GetSvids()[0]
	svid, err := x509svid.ParseRaw(msg.GetX509Svid(), msg.GetX509SvidKey())
	require.NoError(t, err)
	localCAs, err := x509.ParseCertificates(msg.GetBundle())
	require.NoError(t, err)
	_, _, err = x509svid.Verify(svid.Certificates, x509bundle.FromX509Authorities(tdLocal,
		localCAs))
	require.NoError(t, err, "the first SVID sent chains to the bundle sent with it")
}

func TestJWTSVIDWaitsForKeyInBundle(t *testing.T) {
	f := newSVIDFixture(t)
	withoutKey := f.snapshot(1, f.caB)
	withoutKey.Local.JWTAuthorities = []bundle.JWTAuthority{newJWTKey(t, "other").authority}
	f.source.Set(withoutKey)
	ts := f.start(t, time.Hour, nil)
	client := rawClient(t, ts)
	req := &workload.JWTSVIDRequest{Audience: []string{"db"}}

	_, err := client.FetchJWTSVID(withHeader(testContext(t)), req)
	requireStatus(t, err, codes.Unavailable, "does not verify with the local bundle")
	require.Zero(t, f.issuedCount(SVIDTypeJWT), "a token held back is not issued")

	f.source.Set(f.snapshot(2, f.caB))
	resp, err := client.FetchJWTSVID(withHeader(testContext(t)), req)
	require.NoError(t, err)
	require.Len(t, resp.GetSvids(), 1)
	_, err = jwtsvid.ParseAndValidate(resp.GetSvids()[0].GetSvid(),
		f.localBundle().JWTBundle(), []string{"db"})
	require.NoError(t, err)
	require.Equal(t, 1, f.issuedCount(SVIDTypeJWT))
}

func TestStopEndsSVIDStream(t *testing.T) {
	f := newSVIDFixture(t)
	ts := f.start(t, time.Hour, nil)
	stream, err := rawClient(t, ts).FetchX509SVID(withHeader(testContext(t)),
		&workload.X509SVIDRequest{})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.NoError(t, err)
	ts.stop(t)
	_, err = stream.Recv()
	requireStatus(t, err, codes.Unavailable, "shutting down")
}

func TestSVIDRequestsNeedSecurityHeader(t *testing.T) {
	f := newSVIDFixture(t)
	ts := f.start(t, time.Hour, nil)
	client := rawClient(t, ts)
	ctx := testContext(t)
	stream, err := client.FetchX509SVID(ctx, &workload.X509SVIDRequest{})
	require.NoError(t, err)
	_, err = stream.Recv()
	requireStatus(t, err, codes.InvalidArgument, "security header missing from request")
	_, err = client.FetchJWTSVID(ctx, &workload.JWTSVIDRequest{Audience: []string{"db"}})
	requireStatus(t, err, codes.InvalidArgument, "security header missing from request")
	require.Zero(t, f.issuedCount(SVIDTypeX509)+f.issuedCount(SVIDTypeJWT))
}

func TestNewServerRejectsBadSVIDConfig(t *testing.T) {
	f := newSVIDFixture(t)
	cases := []struct {
		name   string
		modify func(*SVIDConfig)
		want   string
	}{
		{"issuer missing", func(c *SVIDConfig) { c.Issuer = nil }, "SVIDConfig.Issuer is nil"},
		{"ID function missing", func(c *SVIDConfig) { c.IDFor = nil },
			"SVIDConfig.IDFor is nil"},
		{"zero TTL", func(c *SVIDConfig) { c.TTL = 0 }, "invalid SVIDConfig.TTL 0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svids := f.svidConfig(t, time.Hour)
			tc.modify(svids)
			_, err := NewServer(Config{Source: f.source, Validator: sourceValidator{f.source},
				SVIDs: svids})
			require.ErrorContains(t, err, tc.want)
		})
	}
}
