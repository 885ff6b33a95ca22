package federation

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// logBuffer collects log output written from concurrent handshakes.
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

// fileCertFixture is a FileCertificate over two files in a temporary folder.
type fileCertFixture struct {
	ca       *testCA
	certFile string
	keyFile  string
	logs     *logBuffer
	source   *FileCertificate
	first    tls.Certificate
}

func newFileCertFixture(t *testing.T, interval time.Duration) *fileCertFixture {
	t.Helper()
	paths := tempPaths(t, "cert.pem", "key.pem")
	f := &fileCertFixture{ca: newTestCA(t, "file test CA"), certFile: paths[0],
		keyFile: paths[1], logs: &logBuffer{}}
	f.first = f.ca.issueWebCert(t, "127.0.0.1")
	writePEMPair(t, f.first, f.certFile, f.keyFile)
	source, err := NewFileCertificate(f.certFile, f.keyFile,
		WithCertificateReloadInterval(interval),
		WithCertificateLogger(slog.New(slog.NewTextHandler(f.logs, nil))))
	require.NoError(t, err)
	f.source = source
	return f
}

func servedSerial(t *testing.T, source *FileCertificate) string {
	t.Helper()
	cert, err := source.GetCertificate(&tls.ClientHelloInfo{})
	require.NoError(t, err)
	require.NotNil(t, cert.Leaf)
	return cert.Leaf.SerialNumber.String()
}

func TestFileCertificateReloadsOverTLS(t *testing.T) {
	f := newFileCertFixture(t, time.Millisecond)
	server, err := NewEndpointServer(EndpointConfig{Address: "127.0.0.1:0",
		Handler: http.NotFoundHandler(), GetCertificate: f.source.GetCertificate,
		Logger: newTestLogger(t)})
	require.NoError(t, err)
	require.NoError(t, server.Start())
	t.Cleanup(func() { require.NoError(t, server.Shutdown(context.Background())) })

	serialOverTLS := func() string {
		conn, err := tls.Dial("tcp", server.Addr().String(), &tls.Config{
			RootCAs: f.ca.pool(), ServerName: "127.0.0.1"})
		require.NoError(t, err)
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	require.Equal(t, f.first.Leaf.SerialNumber.String(), serialOverTLS())

	second := f.ca.issueWebCert(t, "127.0.0.1")
	writePEMPair(t, second, f.certFile, f.keyFile)
	require.Eventually(t, func() bool {
		return serialOverTLS() == second.Leaf.SerialNumber.String()
	}, 30*time.Second, 5*time.Millisecond)
	require.Contains(t, f.logs.String(), "bundle endpoint certificate reloaded")
}

func TestFileCertificateKeepsLastGoodPair(t *testing.T) {
	f := newFileCertFixture(t, time.Millisecond)
	firstSerial := f.first.Leaf.SerialNumber.String()
	const brokenMessage = "changed but cannot be loaded"

	// A certificate whose key is still the old one: the pair does not match.
	second := f.ca.issueWebCert(t, "127.0.0.1")
	keyPEM, err := os.ReadFile(f.keyFile)
	require.NoError(t, err)
	writePEMPair(t, second, f.certFile, f.keyFile)
	require.NoError(t, os.WriteFile(f.keyFile, keyPEM, 0o600))
	require.Eventually(t, func() bool {
		servedSerial(t, f.source)
		return strings.Contains(f.logs.String(), brokenMessage)
	}, 30*time.Second, 5*time.Millisecond)
	require.Equal(t, firstSerial, servedSerial(t, f.source))

	// Unchanged broken files are neither loaded nor reported again. The checks run
	// directly so that the test does not depend on the clock.
	for range 3 {
		f.source.mu.Lock()
		f.source.reload()
		f.source.mu.Unlock()
	}
	require.Equal(t, firstSerial, servedSerial(t, f.source))
	require.Equal(t, 1, strings.Count(f.logs.String(), brokenMessage))

	// A missing file is reported once and does not change the served pair.
	require.NoError(t, os.Remove(f.certFile))
	require.Eventually(t, func() bool {
		servedSerial(t, f.source)
		return strings.Contains(f.logs.String(), "cannot be read")
	}, 30*time.Second, 5*time.Millisecond)
	require.Equal(t, firstSerial, servedSerial(t, f.source))
	for range 3 {
		f.source.mu.Lock()
		f.source.reload()
		f.source.mu.Unlock()
	}
	require.Equal(t, 1, strings.Count(f.logs.String(), "cannot be read"))

	// Fixed files are picked up.
	writePEMPair(t, second, f.certFile, f.keyFile)
	require.Eventually(t, func() bool {
		return servedSerial(t, f.source) == second.Leaf.SerialNumber.String()
	}, 30*time.Second, 5*time.Millisecond)
}

func TestFileCertificateChecksOncePerInterval(t *testing.T) {
	f := newFileCertFixture(t, time.Hour)
	writePEMPair(t, f.ca.issueWebCert(t, "127.0.0.1"), f.certFile, f.keyFile)
	for range 10 {
		require.Equal(t, f.first.Leaf.SerialNumber.String(), servedSerial(t, f.source))
	}
	require.Empty(t, f.logs.String())
}

func TestNewFileCertificateRejectsFiles(t *testing.T) {
	ca := newTestCA(t, "file test CA")
	paths := tempPaths(t, "cert.pem", "key.pem", "other-key.pem", "garbage.pem")
	writePEMPair(t, ca.issueWebCert(t, "127.0.0.1"), paths[0], paths[1])
	writePEMPair(t, ca.issueWebCert(t, "127.0.0.1"), paths[3], paths[2])
	require.NoError(t, os.WriteFile(paths[3], []byte("not PEM"), 0o600))

	tests := []struct {
		name     string
		certFile string
		keyFile  string
		wantErr  string
	}{
		{name: "missing certificate file", certFile: paths[0] + ".missing",
			keyFile: paths[1], wantErr: "read certificate file"},
		{name: "missing key file", certFile: paths[0], keyFile: paths[1] + ".missing",
			wantErr: "read key file"},
		{name: "key of another certificate", certFile: paths[0], keyFile: paths[2],
			wantErr: "private key does not match public key"},
		{name: "certificate not PEM", certFile: paths[3], keyFile: paths[1],
			wantErr: "failed to find any PEM data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewFileCertificate(tt.certFile, tt.keyFile)
			require.ErrorContains(t, err, tt.wantErr)
			require.ErrorContains(t, err, "federation: ")
		})
	}
}
