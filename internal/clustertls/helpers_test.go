package clustertls

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testCA is a cluster CA written by CreateCA into a temporary directory.
type testCA struct {
	certFile, keyFile string
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	certFile, keyFile, err := CreateCA(t.TempDir(), CAOptions{})
	require.NoError(t, err)
	return testCA{certFile: certFile, keyFile: keyFile}
}

// nodeFiles is one node's certificate and key, plus the CA file it trusts.
type nodeFiles struct {
	caFile, certFile, keyFile string
}

// issue writes a node certificate for name, issued at issuedAt, into a new
// temporary directory.
func (ca testCA) issue(t *testing.T, name string, issuedAt time.Time) nodeFiles {
	t.Helper()
	certFile, keyFile, err := createNodeCert(t.TempDir(), NodeCertOptions{
		CACertFile: ca.certFile, CAKeyFile: ca.keyFile, NodeName: name,
	}, issuedAt)
	require.NoError(t, err)
	return nodeFiles{caFile: ca.certFile, certFile: certFile, keyFile: keyFile}
}

func (ca testCA) node(t *testing.T, name string) nodeFiles {
	t.Helper()
	return ca.issue(t, name, time.Now())
}

// signOther signs a certificate from template with the CA key, for
// certificates that CreateNodeCert never makes. It returns the key pair.
func (ca testCA) signOther(t *testing.T, template *x509.Certificate) tls.Certificate {
	t.Helper()
	caCert, caKey, err := loadCA(ca.certFile, ca.keyFile)
	require.NoError(t, err)
	key, err := generateKey()
	require.NoError(t, err)
	template.SerialNumber, err = newSerialNumber()
	require.NoError(t, err)
	der, err := x509.CreateCertificate(nil, template, caCert, key.Public(), caKey)
	require.NoError(t, err)
	keyPEM, err := encodeKey(key)
	require.NoError(t, err)
	pair, err := tls.X509KeyPair(encodeCertificate(der), keyPEM)
	require.NoError(t, err)
	return pair
}

// clientOnlyTemplate is a client certificate of the cluster CA that lacks
// ServerName.
func clientOnlyTemplate() *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: "metrics-scraper"},
		NotBefore:   time.Now().Add(-time.Minute),
		NotAfter:    time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"scraper." + ClusterDomain},
	}
}

func (f nodeFiles) keyPair(t *testing.T) tls.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	require.NoError(t, err)
	return pair
}

func (f nodeFiles) roots(t *testing.T) *x509.CertPool {
	t.Helper()
	caPEM, err := os.ReadFile(f.caFile)
	require.NoError(t, err)
	pool, err := parseCAPool(caPEM)
	require.NoError(t, err)
	return pool
}

// logBuffer collects log output from goroutines that may outlive a check.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slogTo(buf), buf
}

func slogTo(buf *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startLayer starts a StreamLayer on a free loopback port. change adjusts the
// configuration before the start.
func startLayer(t *testing.T, files nodeFiles,
	change func(*StreamLayerConfig)) (*StreamLayer, *logBuffer) {
	t.Helper()
	logger, logs := newTestLogger()
	cfg := StreamLayerConfig{
		BindAddr: "127.0.0.1:0",
		CAFile:   files.caFile, CertFile: files.certFile, KeyFile: files.keyFile,
		Logger: logger,
	}
	if change != nil {
		change(&cfg)
	}
	layer, err := NewStreamLayer(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, layer.Close())
		if t.Failed() {
			t.Logf("stream layer log for %s:\n%s", files.certFile, logs.String())
		}
	})
	return layer, logs
}

// acceptAll runs Accept until the layer closes and returns the channel that
// receives the accepted connections. Accept must never fail before Close, so
// an error before then fails the test.
func acceptAll(t *testing.T, layer *StreamLayer) <-chan net.Conn {
	t.Helper()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			conn, err := layer.Accept()
			if err != nil {
				select {
				case <-layer.closing:
				default:
					t.Errorf("Accept failed before Close: %v", err)
				}
				return
			}
			accepted <- conn
		}
	}()
	return accepted
}

// requireNothingAccepted fails if Accept returned a connection.
func requireNothingAccepted(t *testing.T, accepted <-chan net.Conn) {
	t.Helper()
	select {
	case conn := <-accepted:
		t.Fatalf("Accept returned a connection from %s", conn.RemoteAddr())
	default:
	}
}

// peerSerial returns the serial number of the certificate that the other end of
// conn presented.
func peerSerial(t *testing.T, conn net.Conn) string {
	t.Helper()
	tlsConn, ok := conn.(*tls.Conn)
	require.True(t, ok, "connection is %T, not *tls.Conn", conn)
	certs := tlsConn.ConnectionState().PeerCertificates
	require.NotEmpty(t, certs)
	return certs[0].SerialNumber.Text(16)
}

func fileSerial(t *testing.T, certFile string) string {
	t.Helper()
	return readCert(t, certFile).SerialNumber.Text(16)
}

func readCert(t *testing.T, certFile string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(certFile)
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	require.NotNil(t, block, "no PEM block in %s", certFile)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert
}

const waitFor = 20 * time.Second
const pollEvery = 20 * time.Millisecond
