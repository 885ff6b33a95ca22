package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestServerRejectsOldTLS(t *testing.T) {
	f := newFixture(t)
	api := startAPI(t, f)
	roots := x509.NewCertPool()
	roots.AddCert(f.orgB.ca.cert)
	conn, err := tls.Dial("tcp", api.server.Addr().String(), &tls.Config{
		RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11,
	})
	if conn != nil {
		conn.Close()
	}
	require.Error(t, err)

	conn, err = tls.Dial("tcp", api.server.Addr().String(), &tls.Config{
		RootCAs: roots, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
	})
	require.NoError(t, err)
	require.Equal(t, uint16(tls.VersionTLS12), conn.ConnectionState().Version)
	require.NoError(t, conn.Close())
}

func TestServerLifecycle(t *testing.T) {
	f := newFixture(t)
	quiet := slog.New(slog.DiscardHandler)
	server := NewServer(NewHandler(f.verifier, quiet), quiet)
	require.Nil(t, server.Addr())
	require.NoError(t, server.Shutdown(context.Background()))
	require.ErrorContains(t, server.Start("127.0.0.1:0", nil), "certificate source is nil")

	cert := serverCertificate(t, f.orgB)
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }
	require.NoError(t, server.Start("127.0.0.1:0", getCert))
	require.ErrorContains(t, server.Start("127.0.0.1:0", getCert), "already started")
	addr := server.Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, server.Shutdown(ctx))
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if conn != nil {
		conn.Close()
	}
	require.Error(t, err, "the server no longer accepts connections")
}
