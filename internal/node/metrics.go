package node

import (
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/internal/telemetry"
)

// observeFetch records one fetch attempt.
func (n *Node) observeFetch(td spiffeid.TrustDomain, result string, skipped int, d time.Duration) {
	switch result {
	case telemetry.FetchResultUpdated, telemetry.FetchResultUnchanged:
		n.metrics.ObserveFetch(td.Name(), result, d)
	default:
		n.metrics.ObserveFetch(td.Name(), telemetry.FetchResultError, d)
		n.metrics.CountFetchError(td.Name(), result)
	}
	if skipped > 0 {
		n.metrics.AddSkippedKeys(td.Name(), skipped)
	}
}

// updateStoreMetrics sets the gauges that follow the replicated state, and drops
// the series of trust domains that are gone. known holds the trust domains of
// the previous call.
func (n *Node) updateStoreMetrics(known map[string]bool) map[string]bool {
	current := map[string]bool{}
	if rec, ok := n.store.LocalBundle(); ok {
		n.metrics.SetBundleSequence(rec.TrustDomain, rec.Sequence)
		current[rec.TrustDomain] = true
	}
	for _, rec := range n.store.FederatedBundles() {
		n.metrics.SetBundleSequence(rec.TrustDomain, rec.Sequence)
		current[rec.TrustDomain] = true
	}
	for _, st := range n.store.PeerStatuses() {
		n.metrics.SetPeerStatus(st.TrustDomain, st.LastSuccess, st.ConsecutiveFailures)
		current[st.TrustDomain] = true
	}
	for td := range known {
		if !current[td] {
			n.metrics.DeleteTrustDomain(td)
		}
	}
	n.metrics.SetRaftState(n.store.State())
	n.metrics.SetRaftAppliedIndex(n.store.AppliedIndex())
	if last := n.store.LastContact(); !n.store.IsLeader() && !last.IsZero() {
		n.metrics.SetRaftLastContact(time.Since(last))
	} else {
		n.metrics.SetRaftLastContact(0)
	}
	return current
}

// countRequests counts bundle endpoint responses by status code and adds the
// freshness headers: every node serves from its local copy of the state.
func (n *Node) countRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		n.setFreshnessHeaders(w.Header())
		next.ServeHTTP(rec, r)
		n.metrics.CountEndpointRequest(rec.status)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}
