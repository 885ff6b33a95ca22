package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clusterNodeOptions configure one member of a local cluster.
type clusterNodeOptions struct {
	trustDomain string
	refreshHint time.Duration
	name        string
	// clusterYAML holds the keys of the cluster section besides raft_address, each
	// indented by two spaces.
	clusterYAML string
	// extraYAML holds more top-level sections, appended to the configuration.
	extraYAML string
}

// newNode writes the configuration of one cluster member without starting it.
func newNode(t *testing.T, opts clusterNodeOptions) *bxNode {
	t.Helper()
	dir, err := os.MkdirTemp("", "bx")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	n := &bxNode{
		t:            t,
		name:         opts.name,
		trustDomain:  opts.trustDomain,
		dir:          dir,
		configPath:   filepath.Join(dir, "bundlex.yaml"),
		socket:       filepath.Join(dir, "data", "admin.sock"),
		endpointAddr: freeAddr(t),
		healthAddr:   freeAddr(t),
		logPath:      filepath.Join(dir, "node.log"),
	}
	cfg := fmt.Sprintf(`trust_domain: %s
node_name: %s
data_dir: %s
log_level: debug
bundle_endpoint:
  address: %s
  refresh_hint: %s
health:
  address: %s
cluster:
  raft_address: %s
%sfederation:
  min_refresh: 1s
%s`, opts.trustDomain, opts.name, filepath.Join(dir, "data"), n.endpointAddr, opts.refreshHint,
		n.healthAddr, freeAddr(t), opts.clusterYAML, opts.extraYAML)
	require.NoError(t, os.WriteFile(n.configPath, []byte(cfg), 0o600))
	t.Cleanup(n.stop)
	return n
}
