package cluster

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/clustertls"
)

// probeWarning is the message of the leader's warning for a member that fails
// the probe.
const probeWarning = "member failed the Raft connection check, so it is not added " +
	"to the Raft configuration; check that its node certificate comes from this " +
	"cluster's CA and that its Raft address is reachable"

// testTLSCA is a cluster CA in a temporary directory.
type testTLSCA struct {
	certFile, keyFile string
}

func newTestTLSCA(t *testing.T) testTLSCA {
	t.Helper()
	certFile, keyFile, err := clustertls.CreateCA(t.TempDir(), clustertls.CAOptions{})
	require.NoError(t, err)
	return testTLSCA{certFile: certFile, keyFile: keyFile}
}

// issue writes a node certificate for name and a copy of the CA certificate into
// a new directory, so that a test can replace the files later.
func (ca testTLSCA) issue(t *testing.T, name string) *tlsFiles {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile, err := clustertls.CreateNodeCert(dir, clustertls.NodeCertOptions{
		CACertFile: ca.certFile, CAKeyFile: ca.keyFile, NodeName: name})
	require.NoError(t, err)
	caFile := filepath.Join(dir, "ca.pem")
	copyFile(t, ca.certFile, caFile)
	return &tlsFiles{caFile: caFile, certFile: certFile, keyFile: keyFile}
}

// replaceTLSFiles overwrites the node's TLS files with the contents of other's
// and reloads its stream layer.
func (n *testNode) replaceTLSFiles(other *tlsFiles) {
	t := n.t
	t.Helper()
	copyFile(t, other.caFile, n.tls.caFile)
	copyFile(t, other.certFile, n.tls.certFile)
	copyFile(t, other.keyFile, n.tls.keyFile)
	require.NoError(t, n.layer.Reload())
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, data, 0o600))
}

func withTLS(ca testTLSCA) func(*testNode) {
	return func(n *testNode) { n.tls = ca.issue(n.t, n.name) }
}

// member returns node's view of the member called name.
func member(t *testing.T, node *testNode, name string) (Member, bool) {
	t.Helper()
	members := node.manager.Members()
	i := slices.IndexFunc(members, func(m Member) bool { return m.Name == name })
	if i < 0 {
		return Member{}, false
	}
	return members[i], true
}

// waitForPasses waits until node's reconcile loop completed count more passes.
func waitForPasses(t *testing.T, node *testNode, count uint64) {
	t.Helper()
	target := node.manager.reconcilePasses.Load() + count
	waitFor(t, "the leader reconciled several more times", func() bool {
		return node.manager.reconcilePasses.Load() >= target
	})
}

func TestLeaderAddsMemberOnlyAfterProbePasses(t *testing.T) {
	clusterCA, foreignCA := newTestTLSCA(t), newTestTLSCA(t)
	leader := newTestNode(t, "n1", 1)
	withTLS(clusterCA)(leader)
	leader.start()
	waitForConfiguration(t, []*testNode{leader}, voters("n1"))

	// The joining node has no gossip key problem, but its node certificate and CA
	// come from another CA.
	joiner := newTestNode(t, "n2", 0, leader.gossipAddr())
	joiner.tls = foreignCA.issue(t, "n2")
	joiner.start()

	waitFor(t, "the leader reports n2's failed probe", func() bool {
		m, ok := member(t, leader, "n2")
		return ok && m.RaftProbeError != ""
	})
	reported, _ := member(t, leader, "n2")
	require.Equal(t, StatusAlive, reported.Status)
	require.Empty(t, reported.Suffrage)
	require.Contains(t, reported.RaftProbeError, "certificate signed by unknown authority")
	require.False(t, reported.RaftProbeFailingSince.IsZero())

	// The leader keeps probing on later passes, but warns once and never adds n2.
	waitForPasses(t, leader, 30)
	require.NotContains(t, servers(t, leader), "n2")
	failure, failing := leader.manager.probeFailure("n2")
	require.True(t, failing)
	require.GreaterOrEqual(t, failure.failures, 2, "the leader probes again")
	warnings := leader.logRecords(probeWarning)
	require.Len(t, warnings, 1)
	require.Equal(t, "n2", warnings[0]["member"])
	require.Equal(t, string(joiner.store.Addr()), warnings[0]["raft_address"])
	require.Contains(t, warnings[0]["error"], "certificate signed by unknown authority")

	// Once n2 gets a certificate of the cluster CA, a later pass adds it.
	joiner.replaceTLSFiles(clusterCA.issue(t, "n2"))
	waitForConfiguration(t, []*testNode{leader, joiner}, voters("n1", "n2"))
	passed := leader.logRecords("member passed the Raft connection check; adding it to " +
		"the Raft configuration")
	require.Len(t, passed, 1)
	require.Equal(t, "n2", passed[0]["member"])
	reported, _ = member(t, leader, "n2")
	require.Empty(t, reported.RaftProbeError)
	require.True(t, reported.RaftProbeFailingSince.IsZero())
}

func TestLeaderKeepsConfiguredMemberThatFailsProbe(t *testing.T) {
	clusterCA, foreignCA := newTestTLSCA(t), newTestTLSCA(t)
	nodes := startCluster(t, 3, withTLS(clusterCA))
	leader := waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))
	var follower *testNode
	for _, node := range nodes {
		if node != leader {
			follower = node
		}
	}

	// The follower now presents a foreign certificate, so neither Raft nor a
	// probe reaches it, but it stays alive in gossip.
	follower.replaceTLSFiles(foreignCA.issue(t, follower.name))
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	waitFor(t, "the leader's probe of the follower to fail", func() bool {
		return leader.layer.Probe(ctx, string(follower.store.Addr())) != nil
	})
	waitForPasses(t, leader, 30)

	require.Equal(t, voters("n1", "n2", "n3"), suffrages(t, leader),
		"a configured member that fails a check must stay a voter")
	require.Empty(t, leader.logRecords(probeWarning), "configured members are not probed")
}
