package federation

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/bundlex/bundlex/internal/netlimit"
)

const (
	// DefaultName names the server in logs and errors when EndpointConfig.Name
	// is empty.
	DefaultName = "HTTPS server"
	// DefaultReadHeaderTimeout bounds how long a client may take to send its
	// request headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds the time from the start of a request to the end
	// of its body, so that a client that sends a body byte by byte cannot hold a
	// connection open.
	DefaultReadTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds the time from the end of the request headers to the
	// end of the response, so a slow reader cannot hold a connection forever.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultIdleTimeout is how long an idle keep-alive connection stays open.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxHeaderBytes bounds the request headers. A bundle request carries a
	// few short headers.
	DefaultMaxHeaderBytes = 16 << 10
	// DefaultMaxConnections bounds the connections open at once, idle keep-alive
	// connections included.
	DefaultMaxConnections = 2048
)

// intermediateCipherSuites are the TLS 1.2 suites of Mozilla's "intermediate"
// configuration (Server Side TLS guidelines version 5.0), which SPIFFE Federation 5
// requires. Its two DHE-RSA suites are left out because crypto/tls does not
// implement DHE. TLS 1.3 suites are not configurable in crypto/tls, and its three
// suites are the three of the guidelines.
var intermediateCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// intermediateCurves are the key exchange groups of the same guidelines (X25519,
// P-256, P-384), preceded by the post-quantum hybrid X25519MLKEM768 that crypto/tls
// prefers by default and that is at least as strong as X25519.
var intermediateCurves = []tls.CurveID{
	tls.X25519MLKEM768,
	tls.X25519,
	tls.CurveP256,
	tls.CurveP384,
}

// EndpointConfig configures an EndpointServer. Zero durations and sizes take the
// defaults above.
//
// The TLS handshake must finish within the shortest of ReadHeaderTimeout,
// ReadTimeout and WriteTimeout (net/http uses that minimum for the handshake),
// so a client that connects and sends nothing is dropped after it.
type EndpointConfig struct {
	// Name is the service on this server, such as "bundle endpoint" or "verify
	// API", used in its log messages and errors.
	Name string
	// Address is the TCP address to listen on, for example ":8443" or
	// "127.0.0.1:0" for a free port.
	Address string
	// Handler serves the requests, usually a *Handler.
	Handler http.Handler
	// GetCertificate returns the server certificate for each handshake, so that a
	// renewed certificate is used without a restart: the node's X509-SVID for
	// https_spiffe, or FileCertificate.GetCertificate for https_web.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)

	// ReadHeaderTimeout is lowered to ReadTimeout when it is longer.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading one whole request, headers and body. A handler
	// that needs longer for one route can extend it with
	// http.ResponseController.SetReadDeadline.
	ReadTimeout    time.Duration
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration
	MaxHeaderBytes int
	// MaxConnections bounds the connections open at once. Further connections
	// wait in the kernel's accept queue until one closes, as package netlimit
	// describes.
	MaxConnections int
	// MaxConnectionsSetting is the configuration key of MaxConnections, named in
	// the warning logged when the cap is reached.
	MaxConnectionsSetting string

	// Logger receives start, stop and serve errors. Nil means slog.Default().
	Logger *slog.Logger
}

// EndpointServer is the HTTPS server of the bundle endpoint and of the verify API.
type EndpointServer struct {
	cfg EndpointConfig

	mu       sync.Mutex
	server   *http.Server
	listener *netlimit.Listener
	done     chan struct{}
}

// NewEndpointServer checks cfg, applies the defaults and returns a server that is not
// listening yet.
func NewEndpointServer(cfg EndpointConfig) (*EndpointServer, error) {
	cfg.Name = orDefault(cfg.Name, DefaultName)
	switch {
	case cfg.Address == "":
		return nil, fmt.Errorf("federation: %s address is missing; "+
			"set a listen address such as :8443", cfg.Name)
	case cfg.Handler == nil:
		return nil, fmt.Errorf("federation: %s handler is missing", cfg.Name)
	case cfg.GetCertificate == nil:
		return nil, fmt.Errorf("federation: %s certificate source is missing", cfg.Name)
	case cfg.ReadHeaderTimeout < 0, cfg.ReadTimeout < 0, cfg.WriteTimeout < 0,
		cfg.IdleTimeout < 0, cfg.MaxHeaderBytes < 0, cfg.MaxConnections < 0:
		return nil, fmt.Errorf("federation: %s limits must not be negative "+
			"(read header timeout %s, read timeout %s, write timeout %s, idle timeout %s, "+
			"max header bytes %d, max connections %d)", cfg.Name, cfg.ReadHeaderTimeout,
			cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout, cfg.MaxHeaderBytes,
			cfg.MaxConnections)
	}
	cfg.ReadTimeout = orDefault(cfg.ReadTimeout, DefaultReadTimeout)
	cfg.ReadHeaderTimeout = min(orDefault(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		cfg.ReadTimeout)
	cfg.WriteTimeout = orDefault(cfg.WriteTimeout, DefaultWriteTimeout)
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.MaxHeaderBytes = orDefault(cfg.MaxHeaderBytes, DefaultMaxHeaderBytes)
	cfg.MaxConnections = orDefault(cfg.MaxConnections, DefaultMaxConnections)
	cfg.MaxConnectionsSetting = orDefault(cfg.MaxConnectionsSetting,
		"federation.EndpointConfig.MaxConnections")
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &EndpointServer{cfg: cfg}, nil
}

func orDefault[T comparable](value, fallback T) T {
	var zero T
	if value == zero {
		return fallback
	}
	return value
}

// Start listens on the configured address and serves in the background. Addr then
// returns the bound address. A server can be started once.
func (s *EndpointServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.server != nil {
		return fmt.Errorf("federation: %s already started", s.cfg.Name)
	}
	tcpListener, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("federation: listen on %s for the %s: %w; check "+
			"that the address is free and valid", s.cfg.Address, s.cfg.Name, err)
	}
	listener, err := netlimit.NewListener(tcpListener, s.cfg.MaxConnections, s.cfg.Logger,
		s.cfg.MaxConnectionsSetting)
	if err != nil {
		_ = tcpListener.Close()
		return fmt.Errorf("federation: %s: %w", s.cfg.Name, err)
	}
	s.listener = listener
	s.server = &http.Server{
		Handler:           s.cfg.Handler,
		TLSConfig:         newServerTLSConfig(s.cfg.GetCertificate),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		// Failed handshakes from scanners and misconfigured peers would flood the
		// log at a higher level, and the fetching side reports its own failures.
		ErrorLog: slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelDebug),
	}
	s.done = make(chan struct{})
	go s.serve(s.server, listener, s.done)
	s.cfg.Logger.Info(s.cfg.Name+" started", "address", listener.Addr().String(),
		"read_timeout", s.cfg.ReadTimeout, "max_connections", s.cfg.MaxConnections)
	return nil
}

func (s *EndpointServer) serve(server *http.Server, listener net.Listener, done chan struct{}) {
	defer close(done)
	// The certificate comes from TLSConfig.GetCertificate, so no files are named.
	err := server.ServeTLS(listener, "", "")
	if !errors.Is(err, http.ErrServerClosed) {
		s.cfg.Logger.Error(s.cfg.Name+" stopped serving", "error", err)
	}
}

func newServerTLSConfig(getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate,
	error)) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CipherSuites:     intermediateCipherSuites,
		CurvePreferences: intermediateCurves,
		// SPIFFE Federation 5.2.1.3 and 5.2.2.3: no client authentication of any kind.
		ClientAuth:     tls.NoClientCert,
		GetCertificate: getCertificate,
	}
}

// Addr returns the address the server listens on, or nil before Start.
func (s *EndpointServer) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// Shutdown stops accepting connections and waits for active requests until ctx
// ends, then closes the remaining connections. It returns ctx's error in that case.
// Shutdown before Start does nothing.
func (s *EndpointServer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	server, listener, done := s.server, s.listener, s.done
	s.mu.Unlock()
	if server == nil {
		return nil
	}
	err := server.Shutdown(ctx)
	if err != nil {
		_ = server.Close()
		err = fmt.Errorf("federation: %s shutdown did not finish in time, "+
			"closed the remaining connections: %w", s.cfg.Name, err)
	}
	<-done
	s.cfg.Logger.Info(s.cfg.Name+" stopped", "address", listener.Addr().String())
	return err
}
