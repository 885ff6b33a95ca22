package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

// testCA is a certificate authority made for one test: the Web PKI CA of an
// https_web endpoint, or an X.509 authority published in a SPIFFE bundle.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	template := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(2 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key, certPEM: encodePEM("CERTIFICATE", der)}
}

func randomSerial(t *testing.T) *big.Int {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	require.NoError(t, err)
	return serial
}

func encodePEM(blockType string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
}

// issueServerCert returns a PEM server certificate for 127.0.0.1 signed by ca,
// with its PEM private key and its parsed form.
func (ca *testCA) issueServerCert(t *testing.T) (certPEM, keyPEM []byte, leaf *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	template := &x509.Certificate{
		SerialNumber: randomSerial(t),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	leaf, err = x509.ParseCertificate(der)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return encodePEM("CERTIFICATE", der), encodePEM("PRIVATE KEY", keyDER), leaf
}

// pool returns a certificate pool that trusts only ca.
func (ca *testCA) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// writeTestFile writes data to a new file in the test's temporary directory,
// replacing an existing file by rename so that a reader never sees half of it.
func writeTestFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, data, 0o600))
	require.NoError(t, os.Rename(tmp, path))
	return path
}

// bundleDocument returns a SPIFFE bundle of td with each CA as an x509-svid key.
// A zero sequence or hint leaves the member out.
func bundleDocument(t *testing.T, td string, seq uint64, hint time.Duration,
	cas ...*testCA) []byte {
	t.Helper()
	b := spiffebundle.New(spiffeid.RequireTrustDomainFromString(td))
	for _, ca := range cas {
		b.AddX509Authority(ca.cert)
	}
	if seq > 0 {
		b.SetSequenceNumber(seq)
	}
	if hint > 0 {
		b.SetRefreshHint(hint)
	}
	doc, err := b.Marshal()
	require.NoError(t, err)
	return doc
}

// ecPublicJWK returns a new EC P-256 public key as JWK members, without "use".
func ecPublicJWK(t *testing.T) map[string]any {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	data, err := jose.JSONWebKey{Key: &key.PublicKey}.MarshalJSON()
	require.NoError(t, err)
	var members map[string]any
	require.NoError(t, json.Unmarshal(data, &members))
	return members
}

// fakePeer is an https_web bundle endpoint that the test runs with a certificate
// from its own CA. The test sets the response and reads how many requests arrived.
type fakePeer struct {
	server   *httptest.Server
	ca       *testCA
	requests atomic.Int64

	mu     sync.Mutex
	status int
	body   []byte
}

// startFakePeer starts a peer on a free loopback port that responds with 503
// until serve sets a response.
func startFakePeer(t *testing.T, ca *testCA) *fakePeer {
	t.Helper()
	certPEM, keyPEM, _ := ca.issueServerCert(t)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	p := &fakePeer{ca: ca, status: http.StatusServiceUnavailable}
	p.server = httptest.NewUnstartedServer(http.HandlerFunc(p.handle))
	p.server.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	p.server.StartTLS()
	t.Cleanup(p.server.Close)
	return p
}

func (p *fakePeer) handle(w http.ResponseWriter, _ *http.Request) {
	p.requests.Add(1)
	p.mu.Lock()
	status, body := p.status, p.body
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// serve sets the status and body of every following response.
func (p *fakePeer) serve(status int, body []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status, p.body = status, body
}

func (p *fakePeer) url() string { return p.server.URL + "/" }

func (p *fakePeer) requestCount() int64 { return p.requests.Load() }
