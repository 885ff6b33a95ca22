package verify

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/federation"
)

// startTLSServer serves handler over TLS on a free loopback port with the same
// server the node uses for its HTTPS listeners.
func startTLSServer(t testing.TB, handler http.Handler, cert *tls.Certificate,
	logger *slog.Logger) *federation.EndpointServer {
	t.Helper()
	server, err := federation.NewEndpointServer(federation.EndpointConfig{
		Address: "127.0.0.1:0",
		Handler: handler,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return cert, nil
		},
		Logger: logger,
	})
	require.NoError(t, err)
	require.NoError(t, server.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, server.Shutdown(ctx))
	})
	return server
}
