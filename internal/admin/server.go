package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/bundlex/bundlex/internal/netlimit"
)

// MaxRequestBody is the largest admin request body accepted, in bytes. A bundle or
// CA file travels inside a request, so it is larger than any bundle the node
// fetches by default.
const MaxRequestBody = 4 << 20

// Limits of the admin socket. Only the node's user can open it, so they guard
// against stuck or runaway local clients more than against attackers.
const (
	// ReadHeaderTimeout bounds reading the request headers.
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading one whole request, body included, except a
	// snapshot for restore.
	ReadTimeout = 30 * time.Second
	// SnapshotReadTimeout bounds reading the body of a snapshot restore, which
	// may be up to MaxSnapshotSize, counted from the end of its headers.
	SnapshotReadTimeout = 10 * time.Minute
	// MaxConnections bounds the admin connections open at once. Further ones wait
	// in the kernel's accept queue, as package netlimit describes.
	MaxConnections = 64
)

// Backend carries out admin requests. Errors that are not an *APIError become
// internal errors.
type Backend interface {
	Status(ctx context.Context) Status
	LocalBundle(ctx context.Context) (Bundle, error)
	Bundles(ctx context.Context) ([]Bundle, error)
	Bundle(ctx context.Context, td string) (Bundle, error)
	SetBundle(ctx context.Context, td string, req SetBundleRequest) (Bundle, error)
	DeleteBundle(ctx context.Context, td string) error
	Relationships(ctx context.Context) ([]Relationship, error)
	Relationship(ctx context.Context, td string) (Relationship, error)
	CreateRelationship(ctx context.Context, req RelationshipRequest) (Relationship, error)
	UpdateRelationship(ctx context.Context, td string, req RelationshipRequest) (Relationship, error)
	DeleteRelationship(ctx context.Context, td string) error
	RefreshRelationship(ctx context.Context, td string) (Relationship, error)
	RotateAuthority(ctx context.Context) (Bundle, error)
	MintX509SVID(ctx context.Context, req MintX509SVIDRequest) (X509SVID, error)
	MintJWTSVID(ctx context.Context, req MintJWTSVIDRequest) (JWTSVID, error)
	ClusterMembers(ctx context.Context) ([]ClusterMember, error)
	ClusterRaft(ctx context.Context) (RaftStatus, error)
	ClusterLeave(ctx context.Context) error
	ClusterRemove(ctx context.Context, req RemoveServerRequest) error
	// SnapshotSave writes a snapshot file to w.
	SnapshotSave(ctx context.Context, w io.Writer) error
	// SnapshotRestore restores the snapshot file read from r on the cluster.
	SnapshotRestore(ctx context.Context, r io.Reader) error
}

// Server serves the admin API on a Unix socket.
type Server struct {
	path    string
	backend Backend
	log     *slog.Logger
	srv     *http.Server
	handler http.Handler
	ln      net.Listener
	// maxConnections and snapshotReadTimeout are MaxConnections and
	// SnapshotReadTimeout, which tests lower.
	maxConnections      int
	snapshotReadTimeout time.Duration
}

// Middleware wraps the admin routes, for example to forward a follower's writes
// to the Raft leader.
type Middleware func(http.Handler) http.Handler

// NewServer returns a server for the socket at path. Each middleware wraps the
// routes, the first one outermost.
func NewServer(path string, backend Backend, logger *slog.Logger, middleware ...Middleware) *Server {
	s := &Server{path: path, backend: backend, log: logger,
		maxConnections: MaxConnections, snapshotReadTimeout: SnapshotReadTimeout}
	handler := s.routes()
	for i := len(middleware) - 1; i >= 0; i-- {
		handler = middleware[i](handler)
	}
	handler = s.withSnapshotReadDeadline(handler)
	s.handler = handler
	s.srv = &http.Server{Handler: handler, ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout: ReadTimeout}
	return s
}

// Handler returns the admin routes with their middleware, to serve them on other
// listeners too (a leader serves the requests its followers forward).
func (s *Server) Handler() http.Handler { return s.handler }

// Start creates the socket with mode 0600, so that only the node's user can
// administer it, and serves in the background. A stale socket file left by a
// killed process is replaced.
func (s *Server) Start() error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("admin: create socket directory: %w", err)
	}
	if err := removeStaleSocket(s.path); err != nil {
		return err
	}
	unixListener, err := net.Listen("unix", s.path)
	if err != nil {
		return fmt.Errorf("admin: listen on %s: %w", s.path, err)
	}
	if err := os.Chmod(s.path, 0o600); err != nil {
		unixListener.Close()
		return fmt.Errorf("admin: set mode 0600 on %s: %w", s.path, err)
	}
	ln, err := netlimit.NewListener(unixListener, s.maxConnections, s.log,
		"admin.MaxConnections")
	if err != nil {
		unixListener.Close()
		return fmt.Errorf("admin: %w", err)
	}
	s.ln = ln
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", "error", err)
		}
	}()
	s.log.Info("admin API listening", "socket", s.path)
	return nil
}

// removeStaleSocket deletes path when nothing accepts connections on it.
func removeStaleSocket(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("admin: socket %s is in use by another process; "+
			"stop it or set admin.socket_path", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("admin: remove stale socket %s: %w", path, err)
	}
	return nil
}

// Shutdown stops accepting requests and waits for running ones.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	_ = os.Remove(s.path)
	return err
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	b := s.backend
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Status(r.Context()))
	})
	mux.HandleFunc("GET /v1/bundle", s.handle(func(r *http.Request) (any, error) {
		return b.LocalBundle(r.Context())
	}))
	mux.HandleFunc("GET /v1/bundles", s.handle(func(r *http.Request) (any, error) {
		return b.Bundles(r.Context())
	}))
	mux.HandleFunc("GET /v1/bundles/{td}", s.handle(func(r *http.Request) (any, error) {
		return b.Bundle(r.Context(), r.PathValue("td"))
	}))
	mux.HandleFunc("PUT /v1/bundles/{td}", s.handle(func(r *http.Request) (any, error) {
		var req SetBundleRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return b.SetBundle(r.Context(), r.PathValue("td"), req)
	}))
	mux.HandleFunc("DELETE /v1/bundles/{td}", s.handle(func(r *http.Request) (any, error) {
		return nil, b.DeleteBundle(r.Context(), r.PathValue("td"))
	}))
	s.relationshipRoutes(mux)
	mux.HandleFunc("POST /v1/authority/rotate", s.handle(func(r *http.Request) (any, error) {
		return b.RotateAuthority(r.Context())
	}))
	mux.HandleFunc("POST /v1/svid/x509", s.handle(func(r *http.Request) (any, error) {
		var req MintX509SVIDRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return b.MintX509SVID(r.Context(), req)
	}))
	mux.HandleFunc("POST /v1/svid/jwt", s.handle(func(r *http.Request) (any, error) {
		var req MintJWTSVIDRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return b.MintJWTSVID(r.Context(), req)
	}))
	s.clusterRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Code: CodeNotFound,
			Message: fmt.Sprintf("no admin route %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

func (s *Server) relationshipRoutes(mux *http.ServeMux) {
	b := s.backend
	mux.HandleFunc("GET /v1/relationships", s.handle(func(r *http.Request) (any, error) {
		return b.Relationships(r.Context())
	}))
	mux.HandleFunc("POST /v1/relationships", s.handle(func(r *http.Request) (any, error) {
		var req RelationshipRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return b.CreateRelationship(r.Context(), req)
	}))
	mux.HandleFunc("GET /v1/relationships/{td}", s.handle(func(r *http.Request) (any, error) {
		return b.Relationship(r.Context(), r.PathValue("td"))
	}))
	mux.HandleFunc("PUT /v1/relationships/{td}", s.handle(func(r *http.Request) (any, error) {
		var req RelationshipRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return b.UpdateRelationship(r.Context(), r.PathValue("td"), req)
	}))
	mux.HandleFunc("DELETE /v1/relationships/{td}", s.handle(func(r *http.Request) (any, error) {
		return nil, b.DeleteRelationship(r.Context(), r.PathValue("td"))
	}))
	mux.HandleFunc("POST /v1/relationships/{td}/refresh",
		s.handle(func(r *http.Request) (any, error) {
			return b.RefreshRelationship(r.Context(), r.PathValue("td"))
		}))
}

// handle turns a backend call into a JSON response. A nil result returns 204.
func (s *Server) handle(fn func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		result, err := fn(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if result == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, result)
	}
}

func decode(r *http.Request, into any) error {
	body := http.MaxBytesReader(nil, r.Body, MaxRequestBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		if errors.Is(err, io.EOF) {
			return Errorf(CodeInvalidArgument, "request body is empty; send a JSON object")
		}
		return Errorf(CodeInvalidArgument, "invalid request body: %v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
