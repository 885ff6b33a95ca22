package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bundlex/bundlex/internal/netlimit"
)

// Limits of the health listener. Probes and scrapes are small requests from
// local agents, so these only guard against stuck clients.
const (
	// HealthReadHeaderTimeout is lowered to the read timeout when that is shorter.
	HealthReadHeaderTimeout = 5 * time.Second
	HealthWriteTimeout      = 30 * time.Second
	HealthIdleTimeout       = 60 * time.Second
	// DefaultHealthReadTimeout bounds reading one whole request, body included,
	// unless WithHealthLimits sets another value.
	DefaultHealthReadTimeout = 10 * time.Second
	// DefaultHealthMaxConnections bounds the connections open at once, idle
	// keep-alive connections included, unless WithHealthLimits sets another value.
	DefaultHealthMaxConnections = 256
)

// HealthServer serves /healthz, /readyz and, when given metrics, /metrics.
type HealthServer struct {
	address string
	ready   func() error
	metrics *Metrics
	logger  *slog.Logger

	readTimeout    time.Duration
	maxConnections int

	mu       sync.Mutex
	server   *http.Server
	listener net.Listener
	done     chan struct{}
	stopped  bool
	// wasReady is the last readiness result, to log each change once.
	wasReady atomic.Bool
}

// HealthOption changes a setting of a HealthServer.
type HealthOption func(*HealthServer)

// WithHealthLimits sets the time limit for reading one whole request and the
// maximum of open connections, health.read_timeout and health.max_connections.
// A zero value keeps its default. Connections past the maximum wait in the
// kernel's accept queue, as package netlimit describes.
func WithHealthLimits(readTimeout time.Duration, maxConnections int) HealthOption {
	return func(s *HealthServer) {
		if readTimeout > 0 {
			s.readTimeout = readTimeout
		}
		if maxConnections > 0 {
			s.maxConnections = maxConnections
		}
	}
}

// NewHealthServer prepares a server on address (host:port, port 0 for any).
// /readyz returns 200 while ready returns nil and 503 with the error text
// otherwise; a nil ready means always ready. metrics may be nil, which leaves
// /metrics out.
func NewHealthServer(address string, ready func() error, metrics *Metrics,
	logger *slog.Logger, options ...HealthOption) *HealthServer {
	if ready == nil {
		ready = func() error { return nil }
	}
	s := &HealthServer{address: address, ready: ready, metrics: metrics, logger: logger,
		readTimeout: DefaultHealthReadTimeout, maxConnections: DefaultHealthMaxConnections}
	for _, option := range options {
		option(s)
	}
	return s
}

// Start listens and serves in the background until Shutdown.
func (s *HealthServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.server != nil {
		return fmt.Errorf("telemetry: health server on %s already started", s.listener.Addr())
	}
	if s.address == "" {
		return errors.New("telemetry: health server has no address: " +
			"leave it unstarted when health.address is empty")
	}
	tcpListener, err := net.Listen("tcp", s.address)
	if err != nil {
		return fmt.Errorf("telemetry: listen for health server on %s: %w: "+
			"free the port or change health.address", s.address, err)
	}
	listener, err := netlimit.NewListener(tcpListener, s.maxConnections, s.logger,
		"health.max_connections")
	if err != nil {
		tcpListener.Close()
		return fmt.Errorf("telemetry: health server: %w", err)
	}
	s.listener = listener
	s.server = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: min(HealthReadHeaderTimeout, s.readTimeout),
		ReadTimeout:       s.readTimeout,
		WriteTimeout:      HealthWriteTimeout,
		IdleTimeout:       HealthIdleTimeout,
		ErrorLog:          StdLogger(s.logger, "health"),
	}
	s.done = make(chan struct{})
	go s.serve(s.server, listener, s.done)
	s.logger.Info("health server started", "address", listener.Addr().String(),
		"read_timeout", s.readTimeout, "max_connections", s.maxConnections)
	return nil
}

func (s *HealthServer) serve(server *http.Server, listener net.Listener, done chan struct{}) {
	defer close(done)
	if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.logger.Error("health server stopped serving", "address", listener.Addr().String(),
			"error", err)
	}
}

// Addr returns the address the server listens on, with the port chosen for
// port 0, or "" before Start.
func (s *HealthServer) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Shutdown stops accepting connections and waits, until ctx ends, for
// requests in flight. It does nothing before Start or when called again.
func (s *HealthServer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	server, done, stopped := s.server, s.done, s.stopped
	if server != nil {
		s.stopped = true
	}
	s.mu.Unlock()
	if server == nil || stopped {
		return nil
	}
	if err := server.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: shut down health server on %s: %w", s.Addr(), err)
	}
	<-done
	s.logger.Info("health server stopped", "address", s.Addr())
	return nil
}

func (s *HealthServer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
	return mux
}

func (s *HealthServer) serveReady(w http.ResponseWriter, _ *http.Request) {
	err := s.ready()
	ready := err == nil
	if s.wasReady.Swap(ready) != ready {
		if ready {
			s.logger.Info("node is ready")
		} else {
			s.logger.Warn("node is not ready", "error", err)
		}
	}
	if !ready {
		writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
		return
	}
	writeText(w, http.StatusOK, "ready")
}

func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	// The client may be gone; there is nothing to do about a failed write.
	_, _ = fmt.Fprintln(w, text)
}
