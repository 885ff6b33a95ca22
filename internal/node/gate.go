package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/bundlex/bundlex/internal/verify"
	"github.com/bundlex/bundlex/internal/workload"
)

// The bundle endpoint, the verify API, the Workload API and the file output
// serve nothing until the store's state is current (raft.Store.Current). Before
// that, hashicorp/raft replays the log after the snapshot, and a reader would
// see the older states the replay passes through: a bundle with a lower
// spiffe_sequence, keys that were removed since, or no peer bundle at all.

const (
	// notReadyRetryAfter is the Retry-After value, in seconds, of the 503
	// responses sent while the state is not current. Catching up takes about one
	// Raft election after a restart.
	notReadyRetryAfter = 1
	// verifyCodeNotReady is the verify API's error code for a request that
	// arrives before the node's state is current. The status is 503.
	verifyCodeNotReady = "not_ready"
)

// errNotCurrent is returned to Workload API callers while the state is not
// current.
var errNotCurrent = fmt.Errorf("the node is still loading its replicated state "+
	"after a start; retry with a backoff: %w", workload.ErrValidatorUnavailable)

// stateCurrent reports whether the store's state is current, so that the node
// may serve it.
func (n *Node) stateCurrent() bool { return n.store != nil && n.store.IsCurrent() }

// notCurrentMessage returns the message of the responses sent while the state is
// not current, with the store's reason.
func (n *Node) notCurrentMessage() string {
	reason := "the store is not open"
	if n.store != nil {
		reason = n.store.NotCurrentReason()
	}
	return "the node is still loading its replicated state after a start (" + reason +
		"); retry after " + strconv.Itoa(notReadyRetryAfter) + "s"
}

// gateEndpoint responds 503 with Retry-After until the state is current, so that
// peers never fetch a bundle older than the one this node served before a
// restart. SPIRE Server does not compare spiffe_sequence values, so it would
// store such a rollback.
func (n *Node) gateEndpoint(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.stateCurrent() {
			w.Header().Set("Retry-After", strconv.Itoa(notReadyRetryAfter))
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, n.notCurrentMessage(), http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// gateVerify responds 503 with the error code not_ready and Retry-After until the
// state is current, so that no credential is judged against older bundles.
func (n *Node) gateVerify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.stateCurrent() {
			next.ServeHTTP(w, r)
			return
		}
		// json.Marshal fails only on unsupported values, and this one contains only strings.
		body, _ := json.Marshal(verify.Response{Error: &verify.ErrorBody{
			Code: verifyCodeNotReady, Message: n.notCurrentMessage()}})
		header := w.Header()
		header.Set("Content-Type", "application/json")
		header.Set("Cache-Control", "no-store")
		header.Set("Retry-After", strconv.Itoa(notReadyRetryAfter))
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(append(body, '\n'))
	})
}
