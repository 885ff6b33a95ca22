package workload

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
)

// DefaultShutdownTimeout is the default of Config.ShutdownTimeout.
const DefaultShutdownTimeout = 5 * time.Second

// SocketMode is the mode of the Workload API socket. Every user may connect, so
// the directory that contains the socket is the access control (see the
// package documentation).
const SocketMode os.FileMode = 0o777

// Config configures a Server.
type Config struct {
	// Source provides the bundles. Required.
	Source Source
	// Validator validates JWT-SVIDs for ValidateJWTSVID. Required.
	Validator JWTValidator
	// Logger receives start, stop and error messages. Nil discards them.
	Logger *slog.Logger
	// ShutdownTimeout bounds how long Stop waits for unary RPCs in flight before
	// it closes every connection. Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// SVIDs, if set, makes FetchX509SVID and FetchJWTSVID issue SVIDs to local
	// callers. Nil keeps them returning InvalidArgument.
	SVIDs *SVIDConfig
}

// Server is a SPIFFE Workload API server that delivers bundles and, when
// configured, issues SVIDs.
type Server struct {
	workload.UnimplementedSpiffeWorkloadAPIServer

	source          Source
	validator       JWTValidator
	svids           *SVIDConfig
	log             *slog.Logger
	shutdownTimeout time.Duration
	grpc            *grpc.Server

	// stopping is closed by Stop so that bundle streams end, because
	// GracefulStop alone would wait for them forever.
	stopping chan struct{}
	stopOnce sync.Once
}

// NewServer checks cfg and returns a server that is not yet listening.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("workload: Config.Source is nil; pass the node's bundle source")
	}
	if cfg.Validator == nil {
		return nil, errors.New("workload: Config.Validator is nil; pass a JWT-SVID validator")
	}
	if cfg.ShutdownTimeout < 0 {
		return nil, fmt.Errorf("workload: invalid ShutdownTimeout %s: use zero for the "+
			"default of %s or a positive duration", cfg.ShutdownTimeout, DefaultShutdownTimeout)
	}
	var svids *SVIDConfig
	if cfg.SVIDs != nil {
		if err := cfg.SVIDs.check(); err != nil {
			return nil, err
		}
		copied := *cfg.SVIDs
		copied.AllowedUIDs = slices.Clone(copied.AllowedUIDs)
		svids = &copied
	}
	s := &Server{
		source:          cfg.Source,
		validator:       cfg.Validator,
		svids:           svids,
		log:             cfg.Logger,
		shutdownTimeout: cfg.ShutdownTimeout,
		stopping:        make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.shutdownTimeout == 0 {
		s.shutdownTimeout = DefaultShutdownTimeout
	}
	s.grpc = grpc.NewServer(
		// Every connection carries its caller's Unix credentials for the SVID RPCs.
		grpc.Creds(peerCredentials{}),
		grpc.ChainUnaryInterceptor(requireSecurityHeaderUnary),
		grpc.ChainStreamInterceptor(requireSecurityHeaderStream),
	)
	workload.RegisterSpiffeWorkloadAPIServer(s.grpc, s)
	return s, nil
}

// Serve listens on the Unix socket at socketPath (see ListenUnix) and serves
// until Stop. It returns nil after Stop.
func (s *Server) Serve(socketPath string) error {
	lis, err := ListenUnix(socketPath)
	if err != nil {
		return err
	}
	return s.ServeListener(lis)
}

// ServeListener serves on lis until Stop and closes lis. It returns nil after
// Stop, also when Stop came first.
func (s *Server) ServeListener(lis net.Listener) error {
	s.log.Info("workload API listening", "socket", lis.Addr().String())
	err := s.grpc.Serve(lis)
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("workload: serve on %s: %w", lis.Addr(), err)
	}
	return nil
}

// Stop ends every bundle stream with Unavailable, so that clients reconnect with
// a backoff (SPIFFE Workload Endpoint 6). It then waits up to the shutdown
// timeout for unary RPCs in flight and closes every connection and listener.
// Calling Stop more than once is safe.
func (s *Server) Stop() {
	s.stopOnce.Do(func() { close(s.stopping) })
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	timer := time.NewTimer(s.shutdownTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		s.log.Warn("workload API RPCs still running after the shutdown timeout; "+
			"closing connections", "timeout", s.shutdownTimeout)
		s.grpc.Stop()
		<-done
	}
	s.log.Info("workload API stopped")
}
