package node

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	hraft "github.com/hashicorp/raft"

	"github.com/bundlex/bundlex/internal/admin"
	"github.com/bundlex/bundlex/internal/cluster"
	"github.com/bundlex/bundlex/internal/clustertls"
	"github.com/bundlex/bundlex/internal/forward"
	"github.com/bundlex/bundlex/internal/netlimit"
	"github.com/bundlex/bundlex/internal/telemetry"
	"github.com/bundlex/bundlex/raft"
)

// Transport settings of the Raft port.
const (
	raftMaxPool     = 3
	raftIOTimeout   = 10 * time.Second
	forwardDialWait = 5 * time.Second
)

// Limits of the forwarding server on the Raft port. Only cluster members reach it
// when cluster TLS is set, so, as on the admin socket, they guard against stuck
// or runaway clients. The admin routes extend the read deadline of a snapshot
// restore themselves (admin.SnapshotReadTimeout).
const (
	forwardReadTimeout    = admin.ReadTimeout
	forwardIdleTimeout    = 2 * time.Minute
	forwardMaxConnections = 256
)

// streamLayer returns the Raft port's stream layer: mutual TLS when the cluster
// TLS files are set, plain TCP otherwise (a single node, or nodes on one host).
func (n *Node) streamLayer() (hraft.StreamLayer, error) {
	c := n.cfg.Cluster
	if !c.TLS.Enabled() {
		return forward.NewTCPLayer(c.RaftAddress, n.cfg.RaftAdvertiseAddress())
	}
	return clustertls.NewStreamLayer(clustertls.StreamLayerConfig{
		BindAddr:      c.RaftAddress,
		AdvertiseAddr: n.cfg.RaftAdvertiseAddress(),
		CAFile:        c.TLS.CAFile,
		CertFile:      c.TLS.CertFile,
		KeyFile:       c.TLS.KeyFile,
		Logger:        n.log.With("component", "cluster-tls"),
	})
}

func (n *Node) openStore() error {
	layer, err := n.streamLayer()
	if err != nil {
		return err
	}
	n.mux = forward.NewMux(layer, n.log.With("component", "forward"))
	// The address book lets Raft dial a server at the address gossip reports, so
	// a cluster whose servers all came back on new addresses can still elect.
	n.addressBook = cluster.NewAddressBook()
	transport := hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{
		ServerAddressProvider: n.addressBook,
		Logger:                telemetry.HCLogger(n.log, "raft-net"),
		Stream:                n.mux.RaftLayer(),
		MaxPool:               raftMaxPool,
		Timeout:               raftIOTimeout,
	})
	store, err := raft.Open(raft.Config{
		NodeID:            n.cfg.NodeName,
		DataDir:           n.cfg.DataDir,
		Transport:         transport,
		Bootstrap:         n.cfg.Cluster.BootstrapExpect == 1,
		Logger:            telemetry.HCLogger(n.log, "raft"),
		ApplyTimeout:      n.cfg.Raft.ApplyTimeout,
		SnapshotRetain:    n.cfg.Raft.SnapshotRetain,
		SnapshotThreshold: n.cfg.Raft.SnapshotThreshold,
	})
	if err != nil {
		n.mux.Close()
		return err
	}
	n.store = store
	// The leader needs up to the apply timeout for a write, plus the time to find
	// its own leadership lost.
	n.forwarder = forward.NewClient(n.mux, forwardDialWait, n.cfg.Raft.ApplyTimeout+leaderWait)
	return nil
}

// startForwarding serves the requests followers forward to this node, once the
// admin API exists.
func (n *Node) startForwarding() error {
	n.forwardSrv = &http.Server{
		Handler:           forward.Handler(n.store.Apply, n.admin.Handler()),
		ReadHeaderTimeout: admin.ReadHeaderTimeout,
		ReadTimeout:       forwardReadTimeout,
		IdleTimeout:       forwardIdleTimeout,
	}
	listener, err := netlimit.NewListener(n.mux.ForwardListener(), forwardMaxConnections,
		n.log.With("component", "forward"), "forwardMaxConnections")
	if err != nil {
		return fmt.Errorf("node: forwarding server: %w", err)
	}
	n.goRun(func() {
		err := n.forwardSrv.Serve(listener)
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("forwarding server stopped", "error", err)
		}
	})
	return nil
}

// startCluster starts gossip membership: discovery, bootstrap by expect and the
// leader's membership upkeep.
func (n *Node) startCluster() error {
	c := n.cfg.Cluster
	manager, err := cluster.New(cluster.Config{
		NodeName:                n.cfg.NodeName,
		GossipBindAddr:          c.GossipAddress,
		GossipAdvertiseAddr:     n.cfg.GossipAdvertiseAddress(),
		GossipKey:               c.GossipKeyBytes(),
		Join:                    c.Join,
		RetryJoinInterval:       c.RetryJoinInterval,
		BootstrapExpect:         c.BootstrapExpect,
		RaftAdvertiseAddr:       n.cfg.RaftAdvertiseAddress(),
		RPCAddr:                 n.cfg.RaftAdvertiseAddress(),
		ServerStabilizationTime: c.ServerStabilizationTime,
		DeadServerGrace:         c.DeadServerGrace,
		MinQuorum:               c.EffectiveMinQuorum(),
		ReconcileInterval:       c.ReconcileInterval,
		AddressBook:             n.addressBook,
		// The leader adds a member only once it accepts this node over the Raft
		// port's stream layer, mutual TLS when the cluster TLS files are set.
		RaftProbe: n.mux.Probe,
		Logger:    n.log.With("component", "cluster"),
	}, n.store)
	if err != nil {
		return fmt.Errorf("node: cluster: %w", err)
	}
	if err := manager.Start(n.runCtx); err != nil {
		return fmt.Errorf("node: cluster: %w", err)
	}
	n.cluster = manager
	return nil
}

// Cluster returns the node's membership manager.
func (n *Node) Cluster() *cluster.Manager { return n.cluster }
