package cluster

import (
	"net"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// bootstrapProbeWarning is the message of the warning for a server that fails
// the probe while this node waits for bootstrap_expect.
const bootstrapProbeWarning = "server failed the Raft connection check, so it does not " +
	"count toward bootstrap_expect; check that its node certificate comes from this " +
	"cluster's CA and that its Raft address is reachable"

// warningsAbout returns the node's records with message msg that name member.
func (n *testNode) warningsAbout(msg, member string) []map[string]any {
	var found []map[string]any
	for _, record := range n.logRecords(msg) {
		if record["member"] == member {
			found = append(found, record)
		}
	}
	return found
}

// waitForWaitingReason waits until node logs that bootstrap_expect waits for
// reason.
func waitForWaitingReason(t *testing.T, node *testNode, reason string) {
	t.Helper()
	waitFor(t, node.name+" waits because "+reason, func() bool {
		return slices.ContainsFunc(node.logRecords("bootstrap_expect is waiting"),
			func(record map[string]any) bool { return record["reason"] == reason })
	})
}

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	address := listener.Addr().String()
	require.NoError(t, listener.Close())
	return address
}

func TestBootstrapLeavesOutForeignCertificate(t *testing.T) {
	clusterCA, foreignCA := newTestTLSCA(t), newTestTLSCA(t)
	// The foreign node has a name that sorts first and expects the same number
	// of servers, so without the probe the others would count it and wait for it
	// to bootstrap. It starts first, so every other node sees it from its join.
	foreign := newTestNode(t, "n0", 3)
	foreign.tls = foreignCA.issue(t, "n0")
	foreign.start()
	var honest []*testNode
	for _, name := range []string{"n1", "n2", "n3"} {
		node := newTestNode(t, name, 3, foreign.gossipAddr())
		withTLS(clusterCA)(node)
		node.start()
		honest = append(honest, node)
	}

	leader := waitForConfiguration(t, honest, voters("n1", "n2", "n3"))
	writeBundle(t, leader, honest)

	t.Run("foreign node stays out", func(t *testing.T) {
		require.Empty(t, servers(t, foreign))
		require.False(t, foreign.store.HasExistingState())
		require.Empty(t, foreign.logRecords("bootstrapped the cluster"))
		for _, node := range honest {
			require.NotContains(t, servers(t, node), "n0", "node %s", node.name)
		}
	})
	t.Run("lowest passing server bootstraps", func(t *testing.T) {
		require.Len(t, honest[0].logRecords("bootstrapped the cluster"), 1)
		for _, node := range honest[1:] {
			require.Empty(t, node.logRecords("bootstrapped the cluster"), "node %s",
				node.name)
		}
	})
	t.Run("warning names foreign node", func(t *testing.T) {
		// n1 joined through n0 and bootstrapped, so it probed n0 at least once.
		warnings := honest[0].warningsAbout(bootstrapProbeWarning, "n0")
		require.Len(t, warnings, 1)
		require.Equal(t, string(foreign.store.Addr()), warnings[0]["raft_address"])
		require.Equal(t, foreign.gossipAddr(), warnings[0]["gossip_address"])
		require.Contains(t, warnings[0]["error"], "certificate signed by unknown authority")
		for _, node := range honest[1:] {
			require.LessOrEqual(t, len(node.warningsAbout(bootstrapProbeWarning, "n0")), 1,
				"node %s warns once per server", node.name)
		}
	})
	t.Run("foreign node counts only itself", func(t *testing.T) {
		// The foreign node rejects the certificates of the others in turn, and it
		// ignores their Raft state, so it keeps waiting.
		waitForWaitingReason(t, foreign, "1 of 3 servers are alive in gossip and pass "+
			"the Raft connection check; failing the check: n1, n2, n3")
		for _, name := range []string{"n1", "n2", "n3"} {
			warnings := foreign.warningsAbout(bootstrapProbeWarning, name)
			require.Len(t, warnings, 1, "warnings about %s", name)
			require.Contains(t, warnings[0]["error"], "certificate signed by unknown "+
				"authority")
		}
	})
	t.Run("leader reports foreign node", func(t *testing.T) {
		waitFor(t, "the leader reports n0's failed probe", func() bool {
			m, ok := member(t, leader, "n0")
			return ok && m.RaftProbeError != ""
		})
		require.NotContains(t, servers(t, leader), "n0")
	})
}

func TestBootstrapWaitsForReachableServers(t *testing.T) {
	// n0 has the lowest name and a Raft address on which nothing listens. It
	// expects no bootstrap, so without the probe the others would wait forever
	// on its different bootstrap_expect.
	unreachable := newTestNode(t, "n0", 0)
	unreachable.tcpMux = true
	unreachable.cfg.RaftAdvertiseAddr = closedAddr(t)
	unreachable.start()

	var probesOfN0 atomic.Int32
	var nodes []*testNode
	for _, name := range []string{"n1", "n2"} {
		node := newTestNode(t, name, 3, unreachable.gossipAddr())
		node.tcpMux = true
		if name == "n1" {
			node.onProbe = func(address string, err error) {
				if address == unreachable.cfg.RaftAdvertiseAddr && err != nil {
					probesOfN0.Add(1)
				}
			}
		}
		node.start()
		nodes = append(nodes, node)
	}

	// Only two servers pass, so no server bootstraps, however often n1 probes n0.
	waitForWaitingReason(t, nodes[0], "2 of 3 servers are alive in gossip and pass the "+
		"Raft connection check; failing the check: n0")
	waitFor(t, "n1 probed n0 three times", func() bool { return probesOfN0.Load() >= 3 })
	for _, node := range append([]*testNode{unreachable}, nodes...) {
		require.False(t, node.store.HasExistingState(), "node %s", node.name)
	}
	warnings := nodes[0].warningsAbout(bootstrapProbeWarning, "n0")
	require.Len(t, warnings, 1, "one warning however often the probe fails")
	require.Equal(t, unreachable.cfg.RaftAdvertiseAddr, warnings[0]["raft_address"])
	require.Contains(t, warnings[0]["error"], "connection refused")

	// A third reachable server completes the count.
	third := newTestNode(t, "n3", 3, unreachable.gossipAddr())
	third.tcpMux = true
	third.start()
	nodes = append(nodes, third)
	leader := waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))
	writeBundle(t, leader, nodes)
	require.Len(t, nodes[0].logRecords("bootstrapped the cluster"), 1)
	require.Empty(t, servers(t, unreachable))
}
