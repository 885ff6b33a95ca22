package node

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/config"
	"github.com/bundlex/bundlex/internal/authority"
	"github.com/bundlex/bundlex/internal/workload"
)

// svidTestNode returns a node with a real built-in authority and the given
// template and mint prefixes, without validating them.
func svidTestNode(t *testing.T, template string, prefixes ...string) *Node {
	t.Helper()
	td := spiffeid.RequireTrustDomainFromString("org-a.test")
	builtin, err := authority.OpenBuiltin(authority.BuiltinConfig{
		Dir: filepath.Join(t.TempDir(), "authority"), TrustDomain: td})
	require.NoError(t, err)
	cfg := config.Default()
	cfg.Consumers.WorkloadSVIDPathTemplate = template
	cfg.Consumers.WorkloadSVIDTTL = 10 * time.Minute
	cfg.Consumers.WorkloadSVIDAllowedUIDs = []uint32{1000}
	cfg.Authority.MintAllowedIDPrefixes = prefixes
	return &Node{cfg: cfg, td: td, builtin: builtin}
}

func TestWorkloadSVIDConfig(t *testing.T) {
	t.Run("template expanded per caller", func(t *testing.T) {
		n := svidTestNode(t, "/workload/{gid}/{uid}", "spiffe://org-a.test/workload/")
		svids, err := n.workloadSVIDConfig()
		require.NoError(t, err)
		require.Same(t, n.builtin, svids.Issuer)
		require.Equal(t, 10*time.Minute, svids.TTL)
		require.Equal(t, []uint32{1000}, svids.AllowedUIDs)
		id, err := svids.IDFor(workload.Caller{UID: 1000, GID: 50})
		require.NoError(t, err)
		require.Equal(t, "spiffe://org-a.test/workload/50/1000", id.String())
	})
	t.Run("mint prefixes checked per ID", func(t *testing.T) {
		n := svidTestNode(t, "/workload/uid/{uid}", "spiffe://org-a.test/agents/")
		svids, err := n.workloadSVIDConfig()
		require.NoError(t, err)
		_, err = svids.IDFor(workload.Caller{UID: 1000})
		require.EqualError(t, err, "SPIFFE ID spiffe://org-a.test/workload/uid/1000 is "+
			"outside authority.mint_allowed_id_prefixes")
	})
	t.Run("own identities rejected per ID", func(t *testing.T) {
		n := svidTestNode(t, "/spire/{uid}")
		n.endpointID = spiffeid.RequireFromString("spiffe://org-a.test/spire/1000")
		svids, err := n.workloadSVIDConfig()
		require.NoError(t, err)
		_, err = svids.IDFor(workload.Caller{UID: 1000})
		require.ErrorIs(t, err, authority.ErrReservedID)
		_, err = svids.IDFor(workload.Caller{UID: 1001})
		require.NoError(t, err)

		svids, err = svidTestNode(t, "/bundlex/{uid}").workloadSVIDConfig()
		require.NoError(t, err)
		_, err = svids.IDFor(workload.Caller{UID: 1000})
		require.ErrorIs(t, err, authority.ErrReservedID)
	})
	t.Run("template empty", func(t *testing.T) {
		svids, err := svidTestNode(t, "").workloadSVIDConfig()
		require.NoError(t, err)
		require.Nil(t, svids)
	})
	t.Run("file authority", func(t *testing.T) {
		n := svidTestNode(t, "/workload/uid/{uid}")
		n.builtin = nil
		_, err := n.workloadSVIDConfig()
		require.ErrorContains(t, err, "needs the built-in authority")
	})
}
