package verify

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
)

const (
	// DefaultReadHeaderTimeout bounds how long a client may take to send its
	// request headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds reading a whole request. A request body is at most
	// DefaultMaxRequestBody, which takes well under a second on any network.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds the time from the end of the request headers to
	// the end of the response.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultIdleTimeout is how long an idle keep-alive connection stays open.
	// Consumers verify credentials continuously, so connections are kept long
	// enough to be reused.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxHeaderBytes bounds the request headers; a verification request
	// carries its credential in the body.
	DefaultMaxHeaderBytes = 16 << 10
)

// Server serves a handler, usually NewHandler's, over TLS 1.2 or later.
type Server struct {
	handler http.Handler
	log     *slog.Logger

	mu       sync.Mutex
	server   *http.Server
	listener net.Listener
	done     chan struct{}
}

// NewServer returns a server for handler that is not listening yet. A nil logger
// means slog.Default().
func NewServer(handler http.Handler, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	return &Server{handler: handler, log: logger}
}

// Start listens on address, for example ":8444" or "127.0.0.1:0", and serves in
// the background. getCertificate is called for every handshake, so a renewed
// X509-SVID or certificate file is used without a restart. A server starts once.
func (s *Server) Start(address string,
	getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)) error {
	if getCertificate == nil {
		return errors.New("verify: server certificate source is nil; pass the node's " +
			"X509-SVID or a certificate file source")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.server != nil {
		return errors.New("verify: server already started; create a new Server")
	}
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return fmt.Errorf("verify: listen on %s: %w; check that the address is free and "+
			"valid", address, err)
	}
	s.listener = listener
	s.server = &http.Server{
		Handler: s.handler,
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: getCertificate,
		},
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		// Failed handshakes from scanners would flood the log at a higher level.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.done = make(chan struct{})
	go s.serve(s.server, listener, s.done)
	s.log.Info("verification API started", "address", listener.Addr().String())
	return nil
}

func (s *Server) serve(server *http.Server, listener net.Listener, done chan struct{}) {
	defer close(done)
	// The certificate comes from TLSConfig.GetCertificate, so no files are named.
	err := server.ServeTLS(listener, "", "")
	if !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("verification API stopped serving", "error", err)
	}
}

// Addr returns the address the server listens on, or nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// Shutdown stops accepting connections and waits for active requests until ctx
// ends; then it closes the remaining connections and returns ctx's error.
// Shutdown before Start does nothing.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	server, listener, done := s.server, s.listener, s.done
	s.mu.Unlock()
	if server == nil {
		return nil
	}
	err := server.Shutdown(ctx)
	if err != nil {
		_ = server.Close()
		err = fmt.Errorf("verify: shutdown did not finish in time, closed the remaining "+
			"connections: %w", err)
	}
	<-done
	s.log.Info("verification API stopped", "address", listener.Addr().String())
	return err
}
