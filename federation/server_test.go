package federation

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEndpointServerTLSSettings(t *testing.T) {
	ca := newTestCA(t, "server test CA")
	base := startTestEndpoint(t, http.NotFoundHandler(), ca.issueWebCert(t, "127.0.0.1"))
	addr := base[len("https://"):]

	tests := []struct {
		name    string
		config  *tls.Config
		wantErr string
	}{
		{name: "TLS 1.3 accepted", config: &tls.Config{MinVersion: tls.VersionTLS13}},
		{name: "TLS 1.2 AES-GCM accepted", config: &tls.Config{
			MaxVersion:   tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}},
		{name: "TLS 1.2 ChaCha20 accepted", config: &tls.Config{
			MaxVersion:   tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}},
		{name: "TLS 1.2 CBC suite rejected", config: &tls.Config{
			MaxVersion:   tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}},
			wantErr: "remote error: tls: handshake failure"},
		{name: "TLS 1.1 rejected", config: &tls.Config{
			MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
			wantErr: "remote error: tls: protocol version not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config := tt.config.Clone()
			config.RootCAs = ca.pool()
			config.ServerName = "127.0.0.1"
			conn, err := tls.Dial("tcp", addr, config)
			if tt.wantErr != "" {
				// A remote error shows that the server, not the client, rejected the handshake.
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.NoError(t, conn.Close())
		})
	}
}

func TestEndpointServerRequestsNoClientCertificate(t *testing.T) {
	ca := newTestCA(t, "server test CA")
	base := startTestEndpoint(t, http.NotFoundHandler(), ca.issueWebCert(t, "127.0.0.1"))
	var asked atomic.Bool
	conn, err := tls.Dial("tcp", base[len("https://"):], &tls.Config{
		RootCAs: ca.pool(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked.Store(true)
			return &tls.Certificate{}, nil
		},
	})
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	require.False(t, asked.Load(), "server requested a client certificate")
}

func TestEndpointServerRenewsCertificate(t *testing.T) {
	ca := newTestCA(t, "server test CA")
	first := ca.issueWebCert(t, "127.0.0.1")
	second := ca.issueWebCert(t, "127.0.0.1")
	var current atomic.Pointer[tls.Certificate]
	current.Store(&first)
	server, err := NewEndpointServer(EndpointConfig{
		Address: "127.0.0.1:0",
		Handler: http.NotFoundHandler(),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return current.Load(), nil
		},
		Logger: newTestLogger(t),
	})
	require.NoError(t, err)
	require.NoError(t, server.Start())
	t.Cleanup(func() { require.NoError(t, server.Shutdown(context.Background())) })

	serial := func() string {
		conn, err := tls.Dial("tcp", server.Addr().String(), &tls.Config{RootCAs: ca.pool(),
			ServerName: "127.0.0.1"})
		require.NoError(t, err)
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	require.Equal(t, first.Leaf.SerialNumber.String(), serial())
	current.Store(&second)
	require.Equal(t, second.Leaf.SerialNumber.String(), serial())
}

func TestNewEndpointServerRejectsConfig(t *testing.T) {
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }
	valid := EndpointConfig{Address: "127.0.0.1:0", Handler: http.NotFoundHandler(),
		GetCertificate: getCert}
	tests := []struct {
		name    string
		change  func(*EndpointConfig)
		wantErr string
	}{
		{name: "missing address", change: func(c *EndpointConfig) { c.Address = "" },
			wantErr: "address is missing"},
		{name: "missing handler", change: func(c *EndpointConfig) { c.Handler = nil },
			wantErr: "handler is missing"},
		{name: "missing certificate source",
			change:  func(c *EndpointConfig) { c.GetCertificate = nil },
			wantErr: "certificate source is missing"},
		{name: "negative idle timeout",
			change:  func(c *EndpointConfig) { c.IdleTimeout = -time.Second },
			wantErr: "idle timeout -1s"},
		{name: "negative read timeout",
			change:  func(c *EndpointConfig) { c.ReadTimeout = -time.Second },
			wantErr: "read timeout -1s"},
		{name: "negative max connections",
			change:  func(c *EndpointConfig) { c.MaxConnections = -1 },
			wantErr: "max connections -1"},
		{name: "name in errors",
			change:  func(c *EndpointConfig) { c.Name, c.Handler = "verify API", nil },
			wantErr: "federation: verify API handler is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.change(&cfg)
			_, err := NewEndpointServer(cfg)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestEndpointServerLifecycle(t *testing.T) {
	ca := newTestCA(t, "server test CA")
	cert := ca.issueWebCert(t, "127.0.0.1")
	server, err := NewEndpointServer(EndpointConfig{
		Address: "127.0.0.1:0",
		Handler: http.NotFoundHandler(),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &cert, nil
		},
		Logger: newTestLogger(t),
	})
	require.NoError(t, err)
	require.Nil(t, server.Addr())
	require.NoError(t, server.Shutdown(context.Background()))

	require.NoError(t, server.Start())
	require.ErrorContains(t, server.Start(), "already started")

	busy, err := NewEndpointServer(EndpointConfig{Address: server.Addr().String(),
		Handler: http.NotFoundHandler(), GetCertificate: server.cfg.GetCertificate,
		Logger: newTestLogger(t)})
	require.NoError(t, err)
	require.ErrorContains(t, busy.Start(), "check that the address is free")

	require.NoError(t, server.Shutdown(context.Background()))
	_, err = net.DialTimeout("tcp", server.Addr().String(), 5*time.Second)
	require.Error(t, err, "server still accepts connections after Shutdown")
}

func TestEndpointServerShutdownDeadline(t *testing.T) {
	ca := newTestCA(t, "server test CA")
	cert := ca.issueWebCert(t, "127.0.0.1")
	entered := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	server, err := NewEndpointServer(EndpointConfig{
		Address: "127.0.0.1:0",
		Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			close(entered)
			<-release
		}),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &cert, nil
		},
		Logger: newTestLogger(t),
	})
	require.NoError(t, err)
	require.NoError(t, server.Start())

	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}}
	requestDone := make(chan error, 1)
	go func() {
		resp, err := client.Get("https://" + server.Addr().String() + "/")
		if err == nil {
			resp.Body.Close()
		}
		requestDone <- err
	}()
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = server.Shutdown(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "closed the remaining connections")
	select {
	case err := <-requestDone:
		require.Error(t, err, "request should fail when its connection is closed")
	case <-time.After(30 * time.Second):
		t.Fatal("request still running 30s after Shutdown closed its connection")
	}
}
