package telemetry

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestPeerStatusMetricsAndDeletion(t *testing.T) {
	m := NewMetrics()
	success := time.Unix(1_800_000_000, 0)
	m.SetPeerStatus("org-b.test", success, 3)
	m.SetPeerStatus("org-c.test", time.Time{}, 1)

	require.Equal(t, float64(success.Unix()),
		testutil.ToFloat64(m.peerLastSuccess.WithLabelValues("org-b.test")))
	require.Equal(t, 3.0, testutil.ToFloat64(m.peerFailures.WithLabelValues("org-b.test")))
	require.Equal(t, 1, testutil.CollectAndCount(m.peerLastSuccess),
		"a peer that never succeeded has no last-success series")

	m.DeleteTrustDomain("org-b.test")
	require.Equal(t, 0, testutil.CollectAndCount(m.peerLastSuccess))
	require.Equal(t, 1, testutil.CollectAndCount(m.peerFailures))
	expected := `
# HELP bundlex_peer_consecutive_failures Failed fetches of each peer since its last success.
# TYPE bundlex_peer_consecutive_failures gauge
bundlex_peer_consecutive_failures{trust_domain="org-c.test"} 1
`
	require.NoError(t, testutil.CollectAndCompare(m.peerFailures, strings.NewReader(expected)))
}
