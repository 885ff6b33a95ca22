package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bundlex/bundlex/internal/admin"
)

// Response headers that tell a reader how fresh a node's local state is.
const (
	// HeaderIndex is the last Raft log index applied to the node's state.
	HeaderIndex = "X-Bundlex-Index"
	// HeaderLastContact is the time since the node last heard from the leader, in
	// milliseconds; 0 on the leader.
	HeaderLastContact = "X-Bundlex-Last-Contact"
	// HeaderKnownLeader is "true" when the node has a known leader.
	HeaderKnownLeader = "X-Bundlex-Known-Leader"
	// headerForwarded marks a request a follower forwarded, so that the receiver
	// never forwards it again.
	headerForwarded = "X-Bundlex-Forwarded"
)

// maxForwardBody bounds a forwarded admin request body, in bytes.
const maxForwardBody = admin.MaxRequestBody

// setFreshnessHeaders adds the Raft index and leader contact of the local state.
func (n *Node) setFreshnessHeaders(h http.Header) {
	h.Set(HeaderIndex, strconv.FormatUint(n.store.AppliedIndex(), 10))
	contact := int64(0)
	if !n.store.IsLeader() {
		if last := n.store.LastContact(); !last.IsZero() {
			contact = time.Since(last).Milliseconds()
		}
	}
	h.Set(HeaderLastContact, strconv.FormatInt(contact, 10))
	h.Set(HeaderKnownLeader, strconv.FormatBool(n.leaderID() != ""))
}

// isNodeLocal reports whether a route acts on the receiving node itself: its own
// authority keys or its status. Such requests are never forwarded.
func isNodeLocal(r *http.Request) bool {
	p := r.URL.Path
	return p == "/v1/authority/rotate" || p == "/v1/status" || p == "/v1/cluster/leave" ||
		strings.HasPrefix(p, "/v1/svid/")
}

// adminMiddleware forwards writes and consistent reads to the leader when this
// node is a follower, confirms leadership for consistent reads on the leader,
// and adds the freshness headers to every response.
func (n *Node) adminMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		write := r.Method != http.MethodGet && r.Method != http.MethodHead
		consistent := r.URL.Query().Get("consistent") == "true"
		// A snapshot is taken on the leader, so that it contains every committed write.
		snapshot := r.URL.Path == "/v1/snapshot"
		needsLeader := (write && !isNodeLocal(r)) || consistent || snapshot
		forwarded := r.Header.Get(headerForwarded) != ""
		if needsLeader && !n.store.IsLeader() {
			if forwarded {
				writeAdminError(w, admin.Errorf(admin.CodeNotLeader, "node %s lost leadership "+
					"while a request was forwarded to it; retry", n.cfg.NodeName))
				return
			}
			n.proxyToLeader(w, r)
			return
		}
		if consistent {
			if err := n.confirmLeadership(); err != nil {
				writeAdminError(w, admin.Errorf(admin.CodeNotLeader, "consistent read failed: "+
					"node %s could not confirm it is the leader: %v; retry", n.cfg.NodeName, err))
				return
			}
		}
		next.ServeHTTP(&freshnessWriter{ResponseWriter: w, n: n}, r)
	})
}

// freshnessWriter adds the freshness headers when the response starts, so that
// after a write they carry the index that includes it.
type freshnessWriter struct {
	http.ResponseWriter
	n       *Node
	started bool
}

func (f *freshnessWriter) WriteHeader(code int) {
	if !f.started {
		f.started = true
		f.n.setFreshnessHeaders(f.Header())
	}
	f.ResponseWriter.WriteHeader(code)
}

func (f *freshnessWriter) Write(p []byte) (int, error) {
	if !f.started {
		f.WriteHeader(http.StatusOK)
	}
	return f.ResponseWriter.Write(p)
}

// confirmLeadership checks with a quorum that this node is still the leader and
// waits until its state includes every committed entry.
func (n *Node) confirmLeadership() error {
	r := n.store.Raft()
	if err := r.VerifyLeader().Error(); err != nil {
		return err
	}
	return r.Barrier(n.cfg.Raft.ApplyTimeout).Error()
}

// proxyToLeader sends r to the leader over the Raft port and copies its response.
func (n *Node) proxyToLeader(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxForwardBody))
	if err != nil {
		writeAdminError(w, admin.Errorf(admin.CodeInvalidArgument, "read request body: %v", err))
		return
	}
	var addr string
	var resp *http.Response
	for attempt := 1; ; attempt++ {
		if addr, err = n.waitForLeaderAddr(r.Context()); err != nil {
			writeAdminError(w, admin.Errorf(admin.CodeNotLeader, "%v", err))
			return
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(),
			bytes.NewReader(body))
		if err != nil {
			writeAdminError(w, admin.Errorf(admin.CodeInternal, "%v", err))
			return
		}
		out.Header = r.Header.Clone()
		out.Header.Set(headerForwarded, n.cfg.NodeName)
		resp, err = n.forwarder.Do(addr, out)
		// A request that could not even connect never reached a leader, so it is
		// safe to send again once an election has named another one.
		if err == nil || !isDialError(err) || attempt == maxForwardAttempts ||
			r.Context().Err() != nil {
			break
		}
		n.log.Info("leader unreachable; waiting for an election before forwarding again",
			"leader", addr, "path", r.URL.Path, "attempt", attempt, "error", err)
		sleep(r.Context(), forwardRetryDelay)
	}
	if err != nil {
		n.log.Warn("forward admin request to leader failed", "leader", addr, "path",
			r.URL.Path, "error", err)
		writeAdminError(w, admin.Errorf(admin.CodeUnavailable, "forward %s %s to the leader at "+
			"%s failed: %v; retry", r.Method, r.URL.Path, addr, err))
		return
	}
	defer resp.Body.Close()
	// Read your writes: respond only once this node's state includes the write,
	// so that a read on this node right after returns it.
	if write := r.Method != http.MethodGet && r.Method != http.MethodHead; write &&
		resp.StatusCode < 300 {
		n.waitForIndex(r.Context(), resp.Header.Get(HeaderIndex))
	}
	for key, values := range resp.Header {
		w.Header()[key] = values
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// waitForIndex waits, up to the apply timeout, until the local state has applied
// the given index. A missing or unparsable index means no wait.
func (n *Node) waitForIndex(ctx context.Context, header string) {
	index, err := strconv.ParseUint(header, 10, 64)
	if err != nil || index == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Raft.ApplyTimeout)
	defer cancel()
	if err := n.store.WaitForApplied(ctx, index); err != nil {
		n.log.Warn("forwarded write is not applied on this node yet", "index", index,
			"error", err)
	}
}

// Forwarding retries when the leader cannot be reached at all.
const (
	maxForwardAttempts = 3
	forwardRetryDelay  = time.Second
)

// isDialError reports whether err happened while connecting, before any byte of
// the request was sent.
func isDialError(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

func writeAdminError(w http.ResponseWriter, err *admin.APIError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(err.Status)
	_ = json.NewEncoder(w).Encode(admin.ErrorResponse{Code: err.Code, Message: err.Message})
}
