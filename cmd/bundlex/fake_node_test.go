package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/internal/admin"
)

// fakeNow is the time of every event the fake node records, so that outputs are
// the same on every run.
var fakeNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// unreachableHost makes a relationship's refresh fail in the fake node.
const unreachableHost = "unreachable.test"

// fakeNode is an in-memory admin.Backend behind the real admin.Server. It
// parses bundles with the bundle package, so invalid input is rejected with that
// package's error, and it records the last requests for the tests to inspect.
type fakeNode struct {
	mu            sync.Mutex
	status        admin.Status
	local         admin.Bundle
	bundles       map[string]admin.Bundle
	relationships map[string]admin.Relationship
	calls         int
	lastSet       admin.SetBundleRequest
	lastRequest   admin.RelationshipRequest
	lastUpdateTD  string
	// block, when not nil, delays every LocalBundle call until it is closed.
	block chan struct{}
}

// startFakeNode serves a fake node on a Unix socket in a temporary directory
// and returns it with the socket path.
func startFakeNode(t *testing.T) (*fakeNode, string) {
	t.Helper()
	node := &fakeNode{
		status: admin.Status{NodeName: "node-1", TrustDomain: "example.org", Version: "test",
			RaftState: "Leader", Leader: "node-1", AppliedIndex: 12, LastContact: fakeNow,
			Ready: true, EndpointURL: "https://127.0.0.1:8443/"},
		local:         toAPIBundle(t, newTestBundle(t, "example.org", 3), "local"),
		bundles:       map[string]admin.Bundle{},
		relationships: map[string]admin.Relationship{},
	}
	path := filepath.Join(t.TempDir(), "admin.sock")
	srv := admin.NewServer(path, node, slog.New(slog.DiscardHandler))
	require.NoError(t, srv.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	})
	return node, path
}

// callCount returns how many requests reached the backend.
func (n *fakeNode) callCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls
}

func (n *fakeNode) begin() func() {
	n.mu.Lock()
	n.calls++
	return n.mu.Unlock
}

func newTestCA(t *testing.T, td string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: td + " test CA"},
		NotBefore:             fakeNow.Add(-time.Hour),
		NotAfter:              fakeNow.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: td}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert
}

// newTestBundle returns a bundle for td with one CA certificate, one JWT key and
// spiffe_sequence set to sequence.
func newTestBundle(t *testing.T, td string, sequence uint64) *bundle.Bundle {
	t.Helper()
	b := bundle.New(spiffeTrustDomain(t, td))
	b.Sequence, b.HasSequence = sequence, true
	b.X509Authorities = append(b.X509Authorities, newTestCA(t, td))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	b.JWTAuthorities = append(b.JWTAuthorities,
		bundle.JWTAuthority{KeyID: "key-1", PublicKey: &key.PublicKey})
	return b
}

func spiffeTrustDomain(t *testing.T, td string) spiffeid.TrustDomain {
	t.Helper()
	parsed, err := bundle.ParseTrustDomain(td)
	require.NoError(t, err)
	return parsed
}

func marshalTestBundle(t *testing.T, b *bundle.Bundle) []byte {
	t.Helper()
	doc, err := bundle.Marshal(b)
	require.NoError(t, err)
	return doc
}

func toAPIBundle(t *testing.T, b *bundle.Bundle, source string) admin.Bundle {
	t.Helper()
	out, err := apiBundle(b, source)
	require.NoError(t, err)
	return out
}

// apiBundle converts b the way a node does for the admin API.
func apiBundle(b *bundle.Bundle, source string) (admin.Bundle, error) {
	doc, err := bundle.Marshal(b)
	if err != nil {
		return admin.Bundle{}, err
	}
	x509Keys, jwtKeys := b.KeyCount()
	return admin.Bundle{TrustDomain: b.TrustDomain.Name(), Sequence: b.Sequence,
		HasSequence: b.HasSequence, X509Keys: x509Keys, JWTKeys: jwtKeys, Source: source,
		UpdatedAt: fakeNow, Document: doc, PEM: string(bundle.MarshalPEM(b))}, nil
}

// decodeBundle parses data for td as a node does for SetBundle and Bootstrap.
func decodeBundle(td, data, format string) (*bundle.Bundle, error) {
	parsed, err := bundle.ParseTrustDomain(td)
	if err != nil {
		return nil, admin.Errorf(admin.CodeInvalidArgument, "%v", err)
	}
	b, _, err := bundle.Decode(parsed, []byte(data), bundle.Format(format))
	if err != nil {
		return nil, admin.Errorf(admin.CodeInvalidArgument, "%v", err)
	}
	return b, nil
}

func (n *fakeNode) Status(context.Context) admin.Status {
	defer n.begin()()
	return n.status
}

func (n *fakeNode) waitUnblocked(ctx context.Context) error {
	n.mu.Lock()
	block := n.block
	n.mu.Unlock()
	if block == nil {
		return nil
	}
	select {
	case <-block:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *fakeNode) LocalBundle(ctx context.Context) (admin.Bundle, error) {
	if err := n.waitUnblocked(ctx); err != nil {
		return admin.Bundle{}, err
	}
	defer n.begin()()
	return n.local, nil
}

func (n *fakeNode) Bundles(context.Context) ([]admin.Bundle, error) {
	defer n.begin()()
	out := make([]admin.Bundle, 0, len(n.bundles))
	for _, b := range n.bundles {
		out = append(out, b)
	}
	return out, nil
}

func (n *fakeNode) Bundle(_ context.Context, td string) (admin.Bundle, error) {
	defer n.begin()()
	b, ok := n.bundles[td]
	if !ok {
		return admin.Bundle{}, admin.Errorf(admin.CodeNotFound,
			"no bundle stored for %s; list them with `bundlex bundle list`", td)
	}
	return b, nil
}

func (n *fakeNode) SetBundle(_ context.Context, td string,
	req admin.SetBundleRequest) (admin.Bundle, error) {
	defer n.begin()()
	n.lastSet = req
	parsed, err := decodeBundle(td, req.Data, req.Format)
	if err != nil {
		return admin.Bundle{}, err
	}
	stored, err := apiBundle(parsed, "operator")
	if err != nil {
		return admin.Bundle{}, err
	}
	n.bundles[td] = stored
	return stored, nil
}

func (n *fakeNode) DeleteBundle(_ context.Context, td string) error {
	defer n.begin()()
	if _, ok := n.bundles[td]; !ok {
		return admin.Errorf(admin.CodeNotFound, "no bundle stored for %s", td)
	}
	delete(n.bundles, td)
	return nil
}

func (n *fakeNode) Relationships(context.Context) ([]admin.Relationship, error) {
	defer n.begin()()
	out := make([]admin.Relationship, 0, len(n.relationships))
	for _, rel := range n.relationships {
		out = append(out, rel)
	}
	return out, nil
}

func (n *fakeNode) Relationship(_ context.Context, td string) (admin.Relationship, error) {
	defer n.begin()()
	rel, ok := n.relationships[td]
	if !ok {
		return admin.Relationship{}, admin.Errorf(admin.CodeNotFound,
			"no relationship with %s; list them with `bundlex federation list`", td)
	}
	return rel, nil
}

func (n *fakeNode) CreateRelationship(_ context.Context,
	req admin.RelationshipRequest) (admin.Relationship, error) {
	defer n.begin()()
	n.lastRequest = req
	if _, ok := n.relationships[req.TrustDomain]; ok {
		return admin.Relationship{}, admin.Errorf(admin.CodeAlreadyExists,
			"a relationship with %s already exists; update or delete it", req.TrustDomain)
	}
	rel := admin.Relationship{TrustDomain: req.TrustDomain, CreatedAt: fakeNow}
	if err := n.apply(&rel, req); err != nil {
		return admin.Relationship{}, err
	}
	n.relationships[req.TrustDomain] = rel
	return rel, nil
}

func (n *fakeNode) UpdateRelationship(_ context.Context, td string,
	req admin.RelationshipRequest) (admin.Relationship, error) {
	defer n.begin()()
	n.lastRequest, n.lastUpdateTD = req, td
	rel, ok := n.relationships[td]
	if !ok {
		return admin.Relationship{}, admin.Errorf(admin.CodeNotFound, "no relationship with %s", td)
	}
	if err := n.apply(&rel, req); err != nil {
		return admin.Relationship{}, err
	}
	n.relationships[td] = rel
	return rel, nil
}

// apply copies the non-empty fields of req into rel, as the API defines for
// updates, and stores a bootstrap bundle.
func (n *fakeNode) apply(rel *admin.Relationship, req admin.RelationshipRequest) error {
	if req.BundleEndpointURL != "" {
		rel.BundleEndpointURL = req.BundleEndpointURL
	}
	if req.Profile != "" {
		rel.Profile = req.Profile
	}
	if req.EndpointSPIFFEID != "" {
		rel.EndpointSPIFFEID = req.EndpointSPIFFEID
	}
	if req.CAPEM != "" {
		rel.HasCA = true
	}
	if len(req.AllowedIDPrefixes) > 0 {
		rel.AllowedIDPrefixes = req.AllowedIDPrefixes
	}
	rel.UpdatedAt = fakeNow
	if req.Bootstrap == "" {
		return nil
	}
	parsed, err := decodeBundle(rel.TrustDomain, req.Bootstrap, req.BootstrapFormat)
	if err != nil {
		return err
	}
	stored, err := apiBundle(parsed, "bootstrap")
	if err != nil {
		return err
	}
	n.bundles[rel.TrustDomain] = stored
	rel.Status.HasBundle, rel.Status.StoredSequence = true, stored.Sequence
	rel.Status.BundleSource = "bootstrap"
	rel.Status.X509Keys, rel.Status.JWTKeys = stored.X509Keys, stored.JWTKeys
	return nil
}

func (n *fakeNode) DeleteRelationship(_ context.Context, td string) error {
	defer n.begin()()
	if _, ok := n.relationships[td]; !ok {
		return admin.Errorf(admin.CodeNotFound, "no relationship with %s", td)
	}
	delete(n.relationships, td)
	delete(n.bundles, td)
	return nil
}

// RefreshRelationship records a failed fetch for an endpoint on unreachableHost
// and a successful one otherwise.
func (n *fakeNode) RefreshRelationship(_ context.Context,
	td string) (admin.Relationship, error) {
	defer n.begin()()
	rel, ok := n.relationships[td]
	if !ok {
		return admin.Relationship{}, admin.Errorf(admin.CodeNotFound, "no relationship with %s", td)
	}
	rel.Status.LastAttempt = fakeNow
	rel.Status.NextRefresh = fakeNow.Add(5 * time.Minute)
	if strings.Contains(rel.BundleEndpointURL, unreachableHost) {
		rel.Status.ConsecutiveFailures++
		rel.Status.LastError = "federation: fetch bundle for " + td + ": connection refused"
	} else {
		rel.Status.ConsecutiveFailures = 0
		rel.Status.LastError = ""
		rel.Status.LastSuccess = fakeNow
	}
	n.relationships[td] = rel
	return rel, nil
}

func (n *fakeNode) RotateAuthority(context.Context) (admin.Bundle, error) {
	defer n.begin()()
	n.local.Sequence++
	n.local.X509Keys++
	n.local.JWTKeys++
	return n.local, nil
}

// runCLI runs one bundlex command line in-process against the socket and
// returns its standard output, standard error and exit status.
func runCLI(t *testing.T, socket, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	full := append([]string{"--socket", socket}, args...)
	code := run(context.Background(), full, strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// pemOf encodes certificates as PEM, as an operator's CA or bundle file.
func pemOf(certs ...*x509.Certificate) string {
	var buf bytes.Buffer
	for _, cert := range certs {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	}
	return buf.String()
}

// MintX509SVID returns placeholder PEM text: the CLI only prints or writes it.
func (n *fakeNode) MintX509SVID(_ context.Context,
	req admin.MintX509SVIDRequest) (admin.X509SVID, error) {
	defer n.begin()()
	svid := admin.X509SVID{SPIFFEID: req.SPIFFEID,
		CertsPEM:  "CERTS FOR " + req.SPIFFEID + "\n",
		KeyPEM:    "KEY FOR " + req.SPIFFEID + "\n",
		ExpiresAt: fakeNow.Add(time.Duration(req.TTLSeconds) * time.Second)}
	return svid, nil
}

// MintJWTSVID returns a placeholder token naming the request's ID and audience.
func (n *fakeNode) MintJWTSVID(_ context.Context,
	req admin.MintJWTSVIDRequest) (admin.JWTSVID, error) {
	defer n.begin()()
	svid := admin.JWTSVID{SPIFFEID: req.SPIFFEID,
		Token:     "token:" + req.SPIFFEID + ":" + strings.Join(req.Audience, ","),
		ExpiresAt: fakeNow.Add(time.Duration(req.TTLSeconds) * time.Second)}
	return svid, nil
}
