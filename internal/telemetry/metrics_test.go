package telemetry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// gaugeValue gathers the registry directly and returns one unlabelled gauge.
func gaugeValue(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, family := range families {
		if family.GetName() == name {
			require.Len(t, family.GetMetric(), 1)
			return family.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not gathered", name)
	return 0
}

// scrape fetches /metrics over HTTP and parses the text exposition format.
func scrape(t *testing.T, address string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + address + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytesReader(body))
	require.NoError(t, err)
	return families
}

// sample returns the metric of family whose labels equal labels.
func sample(t *testing.T, families map[string]*dto.MetricFamily, name string,
	labels map[string]string) *dto.Metric {
	t.Helper()
	family, ok := families[name]
	require.True(t, ok, "metric %s not exposed", name)
	for _, metric := range family.GetMetric() {
		got := map[string]string{}
		for _, pair := range metric.GetLabel() {
			got[pair.GetName()] = pair.GetValue()
		}
		if len(got) == len(labels) && mapsEqual(got, labels) {
			return metric
		}
	}
	t.Fatalf("metric %s has no series with labels %v", name, labels)
	return nil
}

func mapsEqual(a, b map[string]string) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func startHealth(t *testing.T, ready func() error, metrics *Metrics) *HealthServer {
	t.Helper()
	logger, _ := newJSONLogger(0)
	server := NewHealthServer("127.0.0.1:0", ready, metrics, logger)
	require.NoError(t, server.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, server.Shutdown(ctx))
	})
	return server
}

func TestMetricsScrapedOverHTTP(t *testing.T) {
	m := NewMetrics()
	m.ObserveFetch("org-b.test", FetchResultUpdated, 250*time.Millisecond)
	m.ObserveFetch("org-b.test", FetchResultUnchanged, 750*time.Millisecond)
	m.ObserveFetch("org-c.test", FetchResultError, 2*time.Second)
	m.CountFetchError("org-c.test", "tls")
	m.SetBundleSequence("org-b.test", 42)
	m.SetBundleKeys("org-b.test", "x509-svid", 2)
	m.SetBundleKeys("org-b.test", "jwt-svid", 1)
	m.AddSkippedKeys("org-b.test", 3)
	m.AddSkippedKeys("org-b.test", 0)
	m.SetRaftState(raft.Candidate)
	m.SetRaftAppliedIndex(1234)
	m.SetRaftLastContact(1500 * time.Millisecond)
	m.CountEndpointRequest(http.StatusOK)
	m.CountEndpointRequest(http.StatusOK)
	m.CountEndpointRequest(http.StatusNotModified)
	m.CountWorkloadSVID("x509")
	m.CountWorkloadSVID("jwt")
	m.CountWorkloadSVID("jwt")

	server := startHealth(t, nil, m)
	families := scrape(t, server.Addr())

	counter := func(name string, labels map[string]string) float64 {
		return sample(t, families, name, labels).GetCounter().GetValue()
	}
	gauge := func(name string, labels map[string]string) float64 {
		return sample(t, families, name, labels).GetGauge().GetValue()
	}
	orgB := map[string]string{"trust_domain": "org-b.test"}

	require.Equal(t, 1.0, counter("bundlex_fetches_total",
		map[string]string{"trust_domain": "org-b.test", "result": "updated"}))
	require.Equal(t, 1.0, counter("bundlex_fetches_total",
		map[string]string{"trust_domain": "org-c.test", "result": "error"}))
	require.Equal(t, 1.0, counter("bundlex_fetch_errors_total",
		map[string]string{"trust_domain": "org-c.test", "reason": "tls"}))
	histogram := sample(t, families, "bundlex_fetch_duration_seconds", orgB).GetHistogram()
	require.Equal(t, uint64(2), histogram.GetSampleCount())
	require.InDelta(t, 1.0, histogram.GetSampleSum(), 1e-9)
	require.Equal(t, 42.0, gauge("bundlex_bundle_sequence", orgB))
	require.Equal(t, 2.0, gauge("bundlex_bundle_keys",
		map[string]string{"trust_domain": "org-b.test", "use": "x509-svid"}))
	require.Equal(t, 1.0, gauge("bundlex_bundle_keys",
		map[string]string{"trust_domain": "org-b.test", "use": "jwt-svid"}))
	require.Equal(t, 3.0, counter("bundlex_bundle_skipped_keys_total", orgB))
	require.Equal(t, 1.0, gauge("bundlex_raft_state", nil))
	require.Equal(t, 1234.0, gauge("bundlex_raft_applied_index", nil))
	require.Equal(t, 1.5, gauge("bundlex_raft_last_contact_seconds", nil))
	require.Equal(t, 2.0, counter("bundlex_endpoint_requests_total",
		map[string]string{"code": "200"}))
	require.Equal(t, 1.0, counter("bundlex_endpoint_requests_total",
		map[string]string{"code": "304"}))
	require.Equal(t, 1.0, counter("bundlex_workload_svids_issued_total",
		map[string]string{"type": "x509"}))
	require.Equal(t, 2.0, counter("bundlex_workload_svids_issued_total",
		map[string]string{"type": "jwt"}))
	require.Contains(t, families, "go_goroutines")
	require.Contains(t, families, "process_cpu_seconds_total")
}

func TestMetricsDeleteTrustDomain(t *testing.T) {
	m := NewMetrics()
	m.ObserveFetch("org-b.test", FetchResultUpdated, time.Second)
	m.SetBundleSequence("org-b.test", 1)
	m.SetBundleKeys("org-b.test", "jwt-svid", 1)
	m.SetBundleSequence("org-c.test", 9)
	m.DeleteTrustDomain("org-b.test")

	server := startHealth(t, nil, m)
	families := scrape(t, server.Addr())
	require.NotContains(t, families, "bundlex_fetches_total")
	require.NotContains(t, families, "bundlex_bundle_keys")
	sequences := families["bundlex_bundle_sequence"].GetMetric()
	require.Len(t, sequences, 1)
	require.Equal(t, "org-c.test", sequences[0].GetLabel()[0].GetValue())
}

func TestMetricsRaftStates(t *testing.T) {
	tests := []struct {
		state raft.RaftState
		want  float64
	}{
		{raft.Follower, 0}, {raft.Candidate, 1}, {raft.Leader, 2}, {raft.Shutdown, 3},
		{raft.RaftState(99), -1},
	}
	for _, tt := range tests {
		t.Run(tt.state.String(), func(t *testing.T) {
			m := NewMetrics()
			m.SetRaftState(tt.state)
			require.Equal(t, tt.want, gaugeValue(t, m, "bundlex_raft_state"))
		})
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	require.NotPanics(t, func() {
		m.ObserveFetch("org-b.test", FetchResultUpdated, time.Second)
		m.CountFetchError("org-b.test", "tls")
		m.SetBundleSequence("org-b.test", 1)
		m.SetBundleKeys("org-b.test", "jwt-svid", 1)
		m.AddSkippedKeys("org-b.test", 1)
		m.DeleteTrustDomain("org-b.test")
		m.SetRaftState(raft.Leader)
		m.SetRaftAppliedIndex(1)
		m.SetRaftLastContact(time.Second)
		m.CountEndpointRequest(http.StatusOK)
		m.CountWorkloadSVID("x509")
		m.ObserveOutputWrite(errors.New("disk full"), time.Now())
	})
}

func TestMetricsOutputWrites(t *testing.T) {
	m := NewMetrics()
	failure := errors.New("rename bundles.json: is a directory")
	m.ObserveOutputWrite(failure, time.Unix(100, 0))
	m.ObserveOutputWrite(failure, time.Unix(105, 0))
	require.Zero(t, gaugeValue(t, m, "bundlex_output_last_success_timestamp_seconds"))

	m.ObserveOutputWrite(nil, time.Unix(110, 0))
	require.Equal(t, 110.0, gaugeValue(t, m, "bundlex_output_last_success_timestamp_seconds"))
	families, err := m.Registry().Gather()
	require.NoError(t, err)
	var failures float64
	for _, family := range families {
		if family.GetName() == "bundlex_output_write_failures_total" {
			failures = family.GetMetric()[0].GetCounter().GetValue()
		}
	}
	require.Equal(t, 2.0, failures)
}
