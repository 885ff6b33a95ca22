package admin

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestZeroTimesLeftOut(t *testing.T) {
	values := []any{
		Bundle{TrustDomain: "org-b.test"},
		Relationship{TrustDomain: "org-b.test"},
		Status{NodeName: "n1"},
		X509SVID{SPIFFEID: "spiffe://org-b.test/w"},
		JWTSVID{SPIFFEID: "spiffe://org-b.test/w"},
		RaftStatus{Node: "n1"},
	}
	for _, value := range values {
		data, err := json.Marshal(value)
		require.NoError(t, err)
		require.NotContains(t, string(data), "0001-01-01", "%T", value)
		for _, name := range []string{"updated_at", "created_at", "last_attempt",
			"last_success", "last_change", "next_refresh", "last_contact", "expires_at"} {
			require.NotContains(t, string(data), `"`+name+`"`, "%T", value)
		}
	}
}

func TestTimesRoundTrip(t *testing.T) {
	success := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	sent := Relationship{TrustDomain: "org-b.test", CreatedAt: success,
		Status: PeerStatus{LastSuccess: success}}
	data, err := json.Marshal(sent)
	require.NoError(t, err)
	require.Contains(t, string(data), `"last_success":"2026-05-01T12:00:00Z"`)
	require.NotContains(t, string(data), `"last_attempt"`)

	var received Relationship
	require.NoError(t, json.Unmarshal(data, &received))
	require.Equal(t, sent, received)
	require.True(t, received.Status.LastAttempt.IsZero())
}
