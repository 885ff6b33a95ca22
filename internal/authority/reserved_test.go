package authority

import (
	"errors"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

func TestCheckMintIDRejectsOwnIdentities(t *testing.T) {
	endpoint := spiffeid.RequireFromString("spiffe://org-a.test/spire/server")
	tests := []struct {
		name     string
		id       string
		reserved bool
		want     string
	}{
		{"bundle endpoint ID", "spiffe://org-a.test/spire/server", true,
			"authority: reserved SPIFFE ID: spiffe://org-a.test/spire/server is the SPIFFE " +
				"ID of this node's bundle endpoint, which peers require from its https_spiffe " +
				"endpoint, so it is never minted; use an ID of a workload, such as " +
				"spiffe://org-a.test/workload"},
		{"reserved path", "spiffe://org-a.test/bundlex", true,
			"authority: reserved SPIFFE ID: spiffe://org-a.test/bundlex is under " +
				"spiffe://org-a.test/bundlex, the path that bundlex keeps for its own " +
				"identities, so it is never minted; use an ID outside that path, such as " +
				"spiffe://org-a.test/workload"},
		{"below reserved path", "spiffe://org-a.test/bundlex/node-1", true,
			"spiffe://org-a.test/bundlex/node-1 is under spiffe://org-a.test/bundlex"},
		{"trust domain ID", "spiffe://org-a.test", false,
			"authority: SPIFFE ID spiffe://org-a.test has no path; an SVID needs a workload " +
				"path such as spiffe://org-a.test/workload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckMintID(spiffeid.RequireFromString(tt.id), endpoint)
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, tt.reserved, errors.Is(err, ErrReservedID))
		})
	}
}

func TestCheckMintIDAcceptsWorkloads(t *testing.T) {
	endpoint := spiffeid.RequireFromString("spiffe://org-a.test/bundlex")
	for _, id := range []string{"spiffe://org-a.test/workload",
		"spiffe://org-a.test/bundlexy", "spiffe://org-a.test/agents/bundlex",
		"spiffe://org-a.test/spire/server"} {
		t.Run(id, func(t *testing.T) {
			require.NoError(t, CheckMintID(spiffeid.RequireFromString(id), endpoint))
		})
	}
}
