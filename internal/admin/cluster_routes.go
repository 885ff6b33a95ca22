package admin

import (
	"errors"
	"net/http"
	"time"
)

// MaxSnapshotSize bounds a snapshot file sent for restore, in bytes.
const MaxSnapshotSize = 1 << 30

func (s *Server) clusterRoutes(mux *http.ServeMux) {
	b := s.backend
	mux.HandleFunc("GET /v1/cluster/members", s.handle(func(r *http.Request) (any, error) {
		return b.ClusterMembers(r.Context())
	}))
	mux.HandleFunc("GET /v1/cluster/raft", s.handle(func(r *http.Request) (any, error) {
		return b.ClusterRaft(r.Context())
	}))
	mux.HandleFunc("POST /v1/cluster/leave", s.handle(func(r *http.Request) (any, error) {
		return nil, b.ClusterLeave(r.Context())
	}))
	mux.HandleFunc("POST /v1/cluster/remove", s.handle(func(r *http.Request) (any, error) {
		var req RemoveServerRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return nil, b.ClusterRemove(r.Context(), req)
	}))
	mux.HandleFunc("GET /v1/snapshot", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if err := b.SnapshotSave(r.Context(), &lazyWriter{w: w}); err != nil {
			s.fail(w, r, err)
		}
	})
	mux.HandleFunc("PUT /v1/snapshot", s.handle(func(r *http.Request) (any, error) {
		body := http.MaxBytesReader(nil, r.Body, MaxSnapshotSize)
		return nil, b.SnapshotRestore(r.Context(), body)
	}))
}

// withSnapshotReadDeadline gives a snapshot restore SnapshotReadTimeout from now
// to read its body, in place of the server's ReadTimeout, because a snapshot may
// be far larger than any other request. It wraps the middleware too, so that a
// follower that proxies the restore to the leader gets the same time.
func (s *Server) withSnapshotReadDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Path != "/v1/snapshot" {
			next.ServeHTTP(w, r)
			return
		}
		deadline := time.Now().Add(s.snapshotReadTimeout)
		if err := http.NewResponseController(w).SetReadDeadline(deadline); err != nil {
			// The restore goes on under the server's ReadTimeout, if it has one.
			s.log.Warn("extend the read deadline of a snapshot restore failed; the "+
				"server's read timeout applies", "method", r.Method, "path", r.URL.Path,
				"error", err)
		}
		next.ServeHTTP(w, r)
	})
}

// lazyWriter sends the 200 status only with the first byte, so that an error
// before any data can still return an error status.
type lazyWriter struct {
	w       http.ResponseWriter
	written bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.written {
		l.written = true
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

// fail writes err as an ErrorResponse.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		apiErr = &APIError{Status: http.StatusInternalServerError, Code: CodeInternal,
			Message: err.Error()}
	}
	if apiErr.Status == 0 {
		apiErr.Status = StatusForCode(apiErr.Code)
	}
	s.log.Warn("admin request failed", "method", r.Method, "path", r.URL.Path,
		"code", apiErr.Code, "error", apiErr.Message)
	writeJSON(w, apiErr.Status, ErrorResponse{Code: apiErr.Code, Message: apiErr.Message})
}
