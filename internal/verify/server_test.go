package verify

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

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
