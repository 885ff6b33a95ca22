package telemetry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every bundlex metric name.
const Namespace = "bundlex"

// Values of the result label of bundlex_fetches_total.
const (
	// FetchResultUpdated is a fetch whose bundle differed from the stored one.
	FetchResultUpdated = "updated"
	// FetchResultUnchanged is a fetch whose bundle matched the stored one.
	FetchResultUnchanged = "unchanged"
	// FetchResultError is a failed fetch. CountFetchError records why.
	FetchResultError = "error"
)

// fetchDurationBuckets spans a fast loopback fetch to the default 10s fetch
// timeout and a little beyond, in seconds.
var fetchDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Metrics owns a Prometheus registry with the Go and process collectors and
// every bundlex metric. Its recording methods do nothing on a nil *Metrics, so a
// component can be built without metrics.
type Metrics struct {
	registry *prometheus.Registry

	fetches          *prometheus.CounterVec
	fetchErrors      *prometheus.CounterVec
	fetchDuration    *prometheus.HistogramVec
	bundleSequence   *prometheus.GaugeVec
	bundleKeys       *prometheus.GaugeVec
	skippedKeys      *prometheus.CounterVec
	raftState        prometheus.Gauge
	raftAppliedIndex prometheus.Gauge
	raftLastContact  prometheus.Gauge
	endpointRequests *prometheus.CounterVec
	peerLastSuccess  *prometheus.GaugeVec
	peerFailures     *prometheus.GaugeVec
	workloadSVIDs    *prometheus.CounterVec

	outputWriteFailures prometheus.Counter
	outputLastSuccess   prometheus.Gauge
}

// NewMetrics creates the metrics in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "fetches_total",
			Help: "Bundle fetches from peer bundle endpoints, by trust domain and result.",
		}, []string{"trust_domain", "result"}),
		fetchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "fetch_errors_total",
			Help: "Failed bundle fetches, by trust domain and reason.",
		}, []string{"trust_domain", "reason"}),
		fetchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "fetch_duration_seconds",
			Help:    "Duration of bundle fetches, redirects included, in seconds.",
			Buckets: fetchDurationBuckets,
		}, []string{"trust_domain"}),
		bundleSequence: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "bundle_sequence",
			Help: "spiffe_sequence of the stored bundle of each trust domain.",
		}, []string{"trust_domain"}),
		bundleKeys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "bundle_keys",
			Help: "Keys in the stored bundle of each trust domain, by use.",
		}, []string{"trust_domain", "use"}),
		skippedKeys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "bundle_skipped_keys_total",
			Help: "Keys ignored while parsing bundles, such as keys of unknown use.",
		}, []string{"trust_domain"}),
		raftState: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "raft_state",
			Help: "Raft state of this node: 0 follower, 1 candidate, 2 leader, 3 shutdown.",
		}),
		raftAppliedIndex: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "raft_applied_index",
			Help: "Index of the last Raft log entry applied to the state machine.",
		}),
		raftLastContact: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "raft_last_contact_seconds",
			Help: "Seconds since this node last heard from the Raft leader.",
		}),
		peerLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "peer_last_success_timestamp_seconds",
			Help: "Unix time of the last successful fetch of each peer; alert when it is too old.",
		}, []string{"trust_domain"}),
		peerFailures: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "peer_consecutive_failures",
			Help: "Failed fetches of each peer since its last success.",
		}, []string{"trust_domain"}),
		endpointRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "endpoint_requests_total",
			Help: "Requests answered by the bundle endpoint, by HTTP status code.",
		}, []string{"code"}),
		workloadSVIDs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "workload_svids_issued_total",
			Help: "SVIDs issued to local callers by the Workload API, by type: x509 or jwt.",
		}, []string{"type"}),
		outputWriteFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "output_write_failures_total",
			Help: "Failed writes of the file output directory; each retry counts again.",
		}),
		outputLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "output_last_success_timestamp_seconds",
			Help: "Unix time when the file output directory last matched the stored bundles.",
		}),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.fetches, m.fetchErrors, m.fetchDuration, m.bundleSequence, m.bundleKeys,
		m.skippedKeys, m.raftState, m.raftAppliedIndex, m.raftLastContact,
		m.endpointRequests, m.peerLastSuccess, m.peerFailures, m.workloadSVIDs,
		m.outputWriteFailures, m.outputLastSuccess,
	)
	return m
}

// Registry returns the registry, for components that add their own collectors.
func (m *Metrics) Registry() *prometheus.Registry {
	return m.registry
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// ObserveFetch records one fetch of trustDomain's bundle endpoint and how long
// it took. result is one of the FetchResult constants.
func (m *Metrics) ObserveFetch(trustDomain, result string, duration time.Duration) {
	if m == nil {
		return
	}
	m.fetches.WithLabelValues(trustDomain, result).Inc()
	m.fetchDuration.WithLabelValues(trustDomain).Observe(duration.Seconds())
}

// CountFetchError records why a fetch failed. reason must come from a short
// fixed set, such as "tls" or "status", never from an error message, or the
// number of series grows without bound.
func (m *Metrics) CountFetchError(trustDomain, reason string) {
	if m == nil {
		return
	}
	m.fetchErrors.WithLabelValues(trustDomain, reason).Inc()
}

// SetBundleSequence records the spiffe_sequence of trustDomain's stored bundle.
// NOTE: the gauge is a float64, so sequences above 2^53 lose their low digits.
func (m *Metrics) SetBundleSequence(trustDomain string, sequence uint64) {
	if m == nil {
		return
	}
	m.bundleSequence.WithLabelValues(trustDomain).Set(float64(sequence))
}

// SetBundleKeys records how many keys of one use, such as x509-svid or
// jwt-svid, trustDomain's stored bundle contains.
func (m *Metrics) SetBundleKeys(trustDomain, use string, count int) {
	if m == nil {
		return
	}
	m.bundleKeys.WithLabelValues(trustDomain, use).Set(float64(count))
}

// AddSkippedKeys counts keys ignored while parsing trustDomain's bundle.
func (m *Metrics) AddSkippedKeys(trustDomain string, count int) {
	if m == nil || count <= 0 {
		return
	}
	m.skippedKeys.WithLabelValues(trustDomain).Add(float64(count))
}

// DeleteTrustDomain removes every series of trustDomain, for a relationship
// that ended.
func (m *Metrics) DeleteTrustDomain(trustDomain string) {
	if m == nil {
		return
	}
	labels := prometheus.Labels{"trust_domain": trustDomain}
	m.fetches.DeletePartialMatch(labels)
	m.fetchErrors.DeletePartialMatch(labels)
	m.fetchDuration.DeletePartialMatch(labels)
	m.bundleSequence.DeletePartialMatch(labels)
	m.bundleKeys.DeletePartialMatch(labels)
	m.skippedKeys.DeletePartialMatch(labels)
	m.peerLastSuccess.DeletePartialMatch(labels)
	m.peerFailures.DeletePartialMatch(labels)
}

// SetPeerStatus records a peer's last successful fetch (zero time: never) and its
// failures since then.
func (m *Metrics) SetPeerStatus(trustDomain string, lastSuccess time.Time, failures int) {
	if m == nil {
		return
	}
	if !lastSuccess.IsZero() {
		m.peerLastSuccess.WithLabelValues(trustDomain).Set(float64(lastSuccess.Unix()))
	}
	m.peerFailures.WithLabelValues(trustDomain).Set(float64(failures))
}

// SetRaftState records this node's Raft state.
func (m *Metrics) SetRaftState(state raft.RaftState) {
	if m == nil {
		return
	}
	value := -1.0
	switch state {
	case raft.Follower:
		value = 0
	case raft.Candidate:
		value = 1
	case raft.Leader:
		value = 2
	case raft.Shutdown:
		value = 3
	}
	m.raftState.Set(value)
}

// SetRaftAppliedIndex records the last applied Raft log index.
// NOTE: indexes above 2^53 lose their low digits in the float64 gauge.
func (m *Metrics) SetRaftAppliedIndex(index uint64) {
	if m == nil {
		return
	}
	m.raftAppliedIndex.Set(float64(index))
}

// SetRaftLastContact records the time since the leader was last heard from.
func (m *Metrics) SetRaftLastContact(since time.Duration) {
	if m == nil {
		return
	}
	m.raftLastContact.Set(since.Seconds())
}

// CountEndpointRequest records one response of the bundle endpoint.
func (m *Metrics) CountEndpointRequest(code int) {
	if m == nil {
		return
	}
	m.endpointRequests.WithLabelValues(strconv.Itoa(code)).Inc()
}

// CountWorkloadSVID records one SVID issued by the Workload API. svidType is
// "x509" or "jwt".
func (m *Metrics) CountWorkloadSVID(svidType string) {
	if m == nil {
		return
	}
	m.workloadSVIDs.WithLabelValues(svidType).Inc()
}

// ObserveOutputWrite records one write of the file output directory at now: a
// failure when err is not nil, otherwise the time of the last success.
func (m *Metrics) ObserveOutputWrite(err error, now time.Time) {
	if m == nil {
		return
	}
	if err != nil {
		m.outputWriteFailures.Inc()
		return
	}
	m.outputLastSuccess.Set(float64(now.Unix()))
}
