package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	hraft "github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/clustertls"
	"github.com/bundlex/bundlex/internal/forward"
	"github.com/bundlex/bundlex/internal/telemetry"
	"github.com/bundlex/bundlex/internal/testutil"
	"github.com/bundlex/bundlex/raft"
)

// waitLimit bounds every wait in these tests. It is generous because elections,
// gossip failure detection and fsyncs slow down on a loaded machine; a passing run
// returns well before it.
const waitLimit = 60 * time.Second

// Test timings, short so that the tests finish quickly, yet several gossip and
// Raft rounds long so that a loaded machine does not flap.
const (
	testInterval      = 100 * time.Millisecond
	testStabilization = time.Second
	testDeadGrace     = 2 * time.Second
)

// fastGossip shortens memberlist's failure detection from seconds to a fraction of
// one on loopback.
func fastGossip(conf *memberlist.Config) {
	conf.ProbeInterval = 200 * time.Millisecond
	conf.ProbeTimeout = 150 * time.Millisecond
	conf.SuspicionMult = 3
	conf.GossipInterval = 50 * time.Millisecond
	conf.PushPullInterval = 2 * time.Second
	conf.TCPTimeout = 2 * time.Second
	conf.GossipToTheDeadTime = 5 * time.Second
}

// testNode is one server: a Raft store and a cluster manager sharing a data
// directory, an address book and a log buffer across restarts.
type testNode struct {
	t        *testing.T
	name     string
	dataDir  string
	raftBind string
	cfg      Config
	// withoutBook leaves the address book out, so that only the leader's address
	// updates fix a changed Raft address.
	withoutBook bool
	logs        *syncBuffer
	store       *raft.Store
	manager     *Manager
	// tls, when set, carries Raft over a cluster TLS stream layer with these
	// files, and the manager probes members with it before adding them.
	tls   *tlsFiles
	layer *clustertls.StreamLayer
	// tcpMux, when set and tls is not, carries Raft over the plain TCP layer and
	// the forwarding mux of internal/forward, whose probe only opens a
	// connection, as a node without the cluster TLS files does.
	tcpMux bool
	// onProbe, when set, is called after each RaftProbe call of the manager.
	onProbe func(address string, err error)
}

// tlsFiles are the CA, certificate and key files of a node's cluster TLS.
type tlsFiles struct {
	caFile, certFile, keyFile string
}

func newTestNode(t *testing.T, name string, expect int, join ...string) *testNode {
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of node %s:\n%s", name, logs.String())
		}
	})
	level := slog.LevelInfo
	if os.Getenv("BUNDLEX_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level}))
	return &testNode{
		t:        t,
		name:     name,
		dataDir:  t.TempDir(),
		raftBind: "127.0.0.1:0",
		logs:     logs,
		cfg: Config{
			NodeName:                name,
			GossipBindAddr:          "127.0.0.1:0",
			Join:                    join,
			BootstrapExpect:         expect,
			RetryJoinInterval:       testInterval,
			ReconcileInterval:       testInterval,
			ServerStabilizationTime: testStabilization,
			DeadServerGrace:         testDeadGrace,
			MembershipChangeTimeout: 5 * time.Second,
			BroadcastTimeout:        2 * time.Second,
			Logger:                  logger,
			tuneGossip:              fastGossip,
		},
	}
}

// start opens the store and starts the manager, with a new address book as a
// restarted process would have.
func (n *testNode) start() {
	t := n.t
	t.Helper()
	raftCfg := raft.Config{
		NodeID:             n.name,
		DataDir:            n.dataDir,
		BindAddr:           n.raftBind,
		Logger:             telemetry.HCLogger(n.cfg.Logger, "raft"),
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
	}
	cfg := n.cfg
	if !n.withoutBook {
		cfg.AddressBook = NewAddressBook()
		raftCfg.ServerAddressProvider = cfg.AddressBook
	}
	switch {
	case n.tls != nil:
		n.startTLS(&raftCfg, &cfg)
	case n.tcpMux:
		n.startTCPMux(&raftCfg, &cfg)
	}
	if probe := cfg.RaftProbe; probe != nil && n.onProbe != nil {
		cfg.RaftProbe = func(ctx context.Context, address string) error {
			err := probe(ctx, address)
			n.onProbe(address, err)
			return err
		}
	}
	store, err := raft.Open(raftCfg)
	require.NoError(t, err)
	manager, err := New(cfg, store)
	require.NoError(t, err)
	require.NoError(t, manager.Start(context.Background()))
	n.store, n.manager = store, manager
	t.Cleanup(func() { n.stop() })
}

// startTLS sets up Raft over a cluster TLS stream layer and the probe with it.
func (n *testNode) startTLS(raftCfg *raft.Config, cfg *Config) {
	t := n.t
	layer, err := clustertls.NewStreamLayer(clustertls.StreamLayerConfig{
		BindAddr: n.raftBind,
		CAFile:   n.tls.caFile,
		CertFile: n.tls.certFile,
		KeyFile:  n.tls.keyFile,
		Logger:   cfg.Logger.With("component", "cluster-tls"),
	})
	require.NoError(t, err)
	var book hraft.ServerAddressProvider
	if cfg.AddressBook != nil {
		book = cfg.AddressBook
	}
	raftCfg.Transport = hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{
		ServerAddressProvider: book,
		Stream:                layer,
		MaxPool:               3,
		Timeout:               2 * time.Second,
		Logger:                telemetry.HCLogger(cfg.Logger, "raft-net"),
	})
	raftCfg.ServerAddressProvider = nil
	cfg.RaftProbe = layer.Probe
	n.layer = layer
}

// startTCPMux sets up Raft over the plain TCP layer behind the forwarding mux,
// and the probe with the mux, as internal/node does without cluster TLS.
func (n *testNode) startTCPMux(raftCfg *raft.Config, cfg *Config) {
	t := n.t
	layer, err := forward.NewTCPLayer(n.raftBind, "")
	require.NoError(t, err)
	mux := forward.NewMux(layer, cfg.Logger.With("component", "forward"))
	var book hraft.ServerAddressProvider
	if cfg.AddressBook != nil {
		book = cfg.AddressBook
	}
	raftCfg.Transport = hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{
		ServerAddressProvider: book,
		Stream:                mux.RaftLayer(),
		MaxPool:               3,
		Timeout:               2 * time.Second,
		Logger:                telemetry.HCLogger(cfg.Logger, "raft-net"),
	})
	raftCfg.ServerAddressProvider = nil
	cfg.RaftProbe = mux.Probe
}

// stop shuts the manager down without leaving and closes the store, as SIGTERM
// does. It is safe to call twice.
func (n *testNode) stop() {
	if n.manager == nil {
		return
	}
	require.NoError(n.t, n.manager.Shutdown())
	require.NoError(n.t, n.store.Close())
	n.manager, n.store = nil, nil
}

func (n *testNode) gossipAddr() string { return n.manager.GossipAddr() }

// startCluster starts nodes named n1...nN with bootstrap expect N. The first
// starts alone and the others join it, as servers do that only know one address.
// Each option changes every node's settings before it starts.
func startCluster(t *testing.T, size int, options ...func(*testNode)) []*testNode {
	var nodes []*testNode
	for i := 1; i <= size; i++ {
		node := newTestNode(t, fmt.Sprintf("n%d", i), size)
		if i > 1 {
			node.cfg.Join = []string{nodes[0].gossipAddr()}
		}
		for _, option := range options {
			option(node)
		}
		node.start()
		nodes = append(nodes, node)
	}
	return nodes
}

// waitFor polls cond until it holds or waitLimit passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", waitLimit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// servers returns the latest Raft configuration of node as ID to server.
func servers(t *testing.T, node *testNode) map[string]hraft.Server {
	t.Helper()
	future := node.store.Raft().GetConfiguration()
	require.NoError(t, future.Error())
	result := map[string]hraft.Server{}
	for _, server := range future.Configuration().Servers {
		result[string(server.ID)] = server
	}
	return result
}

// suffrages returns node's configuration as ID to "voter" or "nonvoter".
func suffrages(t *testing.T, node *testNode) map[string]string {
	t.Helper()
	result := map[string]string{}
	for id, server := range servers(t, node) {
		result[id] = suffrageName(server.Suffrage)
	}
	return result
}

// waitForConfiguration waits until every node's configuration lists exactly want
// and one of them leads, and returns the leader.
func waitForConfiguration(t *testing.T, nodes []*testNode, want map[string]string) *testNode {
	t.Helper()
	var leader *testNode
	waitFor(t, fmt.Sprintf("every node has configuration %v and a leader", want),
		func() bool {
			leader = nil
			for _, node := range nodes {
				if fmt.Sprint(suffrages(t, node)) != fmt.Sprint(want) {
					return false
				}
				if node.store.IsLeader() {
					leader = node
				}
			}
			return leader != nil
		})
	return leader
}

func voters(names ...string) map[string]string {
	result := map[string]string{}
	for _, name := range names {
		result[name] = SuffrageVoter
	}
	return result
}

// writeBundle stores a new local bundle version through the leader and waits
// until every node applied it, which shows that the cluster commits writes.
func writeBundle(t *testing.T, leader *testNode, nodes []*testNode) uint64 {
	t.Helper()
	var previous uint64
	if record, ok := leader.store.LocalBundle(); ok {
		previous = record.Sequence
	}
	sequence := previous + 1
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(t, leader.store.Apply(ctx, raft.PutLocalBundle{
		Record: raft.BundleRecord{
			TrustDomain: "local.test",
			Document:    fmt.Appendf(nil, `{"keys":[],"spiffe_sequence":%d}`, sequence),
			Sequence:    sequence,
			HasSequence: true,
			Source:      raft.SourceLocal,
			UpdatedAt:   time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC),
		},
		PrevSequence: previous,
	}))
	for _, node := range nodes {
		require.NoError(t, node.store.WaitForApplied(ctx, leader.store.AppliedIndex()),
			"node %s", node.name)
		record, ok := node.store.LocalBundle()
		require.True(t, ok, "node %s", node.name)
		require.Equal(t, sequence, record.Sequence, "node %s", node.name)
	}
	return sequence
}

// logRecords returns the node's log records whose message is msg.
func (n *testNode) logRecords(msg string) []map[string]any {
	var found []map[string]any
	for _, line := range bytes.Split([]byte(n.logs.String()), []byte{'\n'}) {
		var record map[string]any
		if json.Unmarshal(line, &record) == nil && record["msg"] == msg {
			found = append(found, record)
		}
	}
	return found
}

// memberNames returns the names of the members of node with the given status.
func memberNames(node *testNode, status Status) []string {
	var names []string
	for _, member := range node.manager.Members() {
		if member.Status == status {
			names = append(names, member.Name)
		}
	}
	slices.Sort(names)
	return names
}

// syncBuffer is a bytes.Buffer that many goroutines can write.
type syncBuffer = testutil.SyncBuffer
