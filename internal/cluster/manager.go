package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/bundlex/bundlex/internal/telemetry"
	"github.com/bundlex/bundlex/raft"
)

// Manager runs one server's cluster membership: gossip through memberlist, the
// join retries, bootstrap-expect and, on the Raft leader, the reconcile loop that
// keeps the Raft configuration in step with gossip. All methods are safe for
// concurrent use.
type Manager struct {
	cfg   Config
	store *raft.Store
	log   *slog.Logger

	// mu guards the fields below it. It is never held while calling memberlist,
	// because memberlist calls the event delegate with its own lock held.
	mu      sync.Mutex
	members map[string]*memberEntry
	// probeFailures holds, on the leader, the members that failed RaftProbe and
	// are not in the Raft configuration yet.
	probeFailures map[string]probeFailure
	meta          nodeMeta
	encodedMeta   []byte
	list          *memberlist.Memberlist
	gossipAddr    string
	started       bool

	// leaving is set when Leave starts and is published in the metadata.
	leaving atomic.Bool
	// publishMu serializes metadata updates, so that a stale one never follows a
	// newer one, and orders them before the leave message. It guards leftGossip.
	publishMu sync.Mutex
	// leftGossip is set when Leave sends the leave message. A metadata update
	// after it would carry a higher incarnation and make the node alive again.
	leftGossip bool
	// lifecycleMu orders the leave message before memberlist's shutdown, because
	// memberlist panics on a leave after shutdown.
	lifecycleMu sync.Mutex
	// leaveMu lets one Leave run at a time.
	leaveMu sync.Mutex

	// reconcilePasses counts the leader's reconcile passes, so that tests can
	// wait for several passes instead of a fixed time.
	reconcilePasses atomic.Uint64

	reconcileKick chan struct{}
	bootstrapKick chan struct{}
	stop          chan struct{}
	loops         sync.WaitGroup
	stopOnce      sync.Once
	shutdownErr   error
}

// New checks cfg and returns a Manager for store, whose node ID must equal
// cfg.NodeName. Nothing listens until Start.
func New(cfg Config, store *raft.Store) (*Manager, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("cluster: the Raft store is nil; open it before the " +
			"cluster manager")
	}
	if store.NodeID() != cfg.NodeName {
		return nil, fmt.Errorf("cluster: the node name %q differs from the Raft node ID "+
			"%q; use the node name as the Raft node ID", cfg.NodeName, store.NodeID())
	}

	if cfg.RaftAdvertiseAddr == "" {
		cfg.RaftAdvertiseAddr = string(store.Addr())
	}
	if _, _, err := net.SplitHostPort(cfg.RaftAdvertiseAddr); err != nil {
		return nil, fmt.Errorf("cluster: the Raft advertise address %q is invalid: %w; "+
			"use the host:port other servers dial", cfg.RaftAdvertiseAddr, err)
	}
	m := &Manager{
		cfg:           cfg,
		store:         store,
		log:           cfg.Logger.With("node", cfg.NodeName),
		members:       map[string]*memberEntry{},
		probeFailures: map[string]probeFailure{},
		reconcileKick: make(chan struct{}, 1),
		bootstrapKick: make(chan struct{}, 1),
		stop:          make(chan struct{}),
	}

	// The largest metadata must fit now, so that no later update can exceed the
	// memberlist limit.
	largest := m.currentMeta()
	largest.LastIndex, largest.RaftState, largest.Leaving = math.MaxUint64, 1, true
	if _, err := largest.encode(); err != nil {
		return nil, err
	}
	m.meta = m.currentMeta()
	encoded, err := m.meta.encode()
	if err != nil {
		return nil, err
	}
	m.encodedMeta = encoded
	return m, nil
}

// Start starts gossip and the background loops: joining cfg.Join, bootstrap-expect,
// metadata updates and the leader's reconcile loop. The loops run until Leave or
// Shutdown. Start only checks ctx before it begins, and cancelling ctx later does
// not stop the loops.
func (m *Manager) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cluster: start node %s: %w", m.cfg.NodeName, err)
	}
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return fmt.Errorf("cluster: the manager of node %s was already started; create "+
			"a new one", m.cfg.NodeName)
	}
	m.started = true
	m.mu.Unlock()

	conf, err := m.memberlistConfig()
	if err != nil {
		return err
	}
	list, err := memberlist.Create(conf)
	if err != nil {
		return fmt.Errorf("cluster: start gossip on %s: %w; use a free port, and set an "+
			"advertise address when binding to all interfaces", m.cfg.GossipBindAddr, err)
	}
	// memberlist's LocalNode returns its internal record, which later metadata
	// updates write without a lock held by the reader, so the address is copied
	// once here.
	gossipAddr := list.LocalNode().Address()
	m.mu.Lock()
	m.list, m.gossipAddr = list, gossipAddr
	m.mu.Unlock()
	if m.cfg.GossipKey == nil {
		m.log.Warn("gossip is not encrypted; set a gossip key so that only servers with " +
			"the key can join")
	}
	m.log.Info("gossip started", "gossip_address", m.GossipAddr(),
		"raft_address", m.cfg.RaftAdvertiseAddr, "encrypted", m.cfg.GossipKey != nil,
		"bootstrap_expect", m.cfg.BootstrapExpect, "join", m.cfg.Join)

	m.pruneMembers()
	m.goLoop(m.runMetadata)
	m.goLoop(m.runJoin)
	if m.cfg.BootstrapExpect > 0 {
		m.goLoop(m.runBootstrapExpect)
	}
	m.goLoop(m.runLeadership)
	return nil
}

func (m *Manager) memberlistConfig() (*memberlist.Config, error) {
	conf := memberlist.DefaultLANConfig()
	conf.Name = m.cfg.NodeName
	bind, err := splitGossipAddr("gossip bind address", m.cfg.GossipBindAddr)
	if err != nil {
		return nil, err
	}
	conf.BindAddr, conf.BindPort = bind.host, bind.port
	conf.AdvertiseAddr, conf.AdvertisePort = "", 0
	if m.cfg.GossipAdvertiseAddr != "" {
		advertise, err := splitGossipAddr("gossip advertise address",
			m.cfg.GossipAdvertiseAddr)
		if err != nil {
			return nil, err
		}
		conf.AdvertiseAddr, conf.AdvertisePort = advertise.host, advertise.port
	}
	conf.SecretKey = m.cfg.GossipKey
	conf.Delegate = gossipDelegate{m: m}
	conf.Events = eventDelegate{m: m}
	conf.Logger = telemetry.StdLogger(m.cfg.Logger, "memberlist")
	conf.DeadNodeReclaimTime = m.cfg.GossipDeadNodeReclaimTime
	if m.cfg.tuneGossip != nil {
		m.cfg.tuneGossip(conf)
	}
	return conf, nil
}

// GossipAddr returns the gossip host:port other members dial, empty before Start.
func (m *Manager) GossipAddr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gossipAddr
}

func (m *Manager) memberlist() *memberlist.Memberlist {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.list
}

// Shutdown stops the loops and gossip without leaving, so the server stays in
// the Raft configuration and the other servers see it as dead. A stopped cluster
// therefore restarts without any manual step. It does not close the store.
// Calls after the first return the first call's result.
func (m *Manager) Shutdown() error {
	m.stopOnce.Do(func() {
		m.lifecycleMu.Lock()
		defer m.lifecycleMu.Unlock()
		close(m.stop)
		m.loops.Wait()
		if list := m.memberlist(); list != nil {
			if err := list.Shutdown(); err != nil {
				m.shutdownErr = fmt.Errorf("cluster: stop gossip on node %s: %w",
					m.cfg.NodeName, err)
			}
		}
		m.log.Info("cluster membership stopped")
	})
	return m.shutdownErr
}

func (m *Manager) goLoop(loop func()) {
	m.loops.Add(1)
	go func() {
		defer m.loops.Done()
		loop()
	}()
}

// kick wakes the reconcile and bootstrap loops after a membership event.
func (m *Manager) kick() {
	for _, ch := range []chan struct{}{m.reconcileKick, m.bootstrapKick} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// sleep waits for d, a kick on wake if it is not nil, or Shutdown. It returns
// false on Shutdown.
func (m *Manager) sleep(d time.Duration, wake <-chan struct{}) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-m.stop:
		return false
	case <-timer.C:
	case <-wake:
	}
	return true
}

// currentMeta returns the metadata that describes this node now.
func (m *Manager) currentMeta() nodeMeta {
	meta := nodeMeta{
		RaftAddr:  m.cfg.RaftAdvertiseAddr,
		RPCAddr:   m.cfg.RPCAddr,
		Expect:    m.cfg.BootstrapExpect,
		LastIndex: m.store.Raft().LastIndex(),
		Leaving:   m.leaving.Load(),
	}
	if m.store.HasExistingState() {
		meta.RaftState = 1
	}
	return meta
}

// publishMeta sends the current metadata to the other members when it changed.
func (m *Manager) publishMeta() {
	m.publishMu.Lock()
	defer m.publishMu.Unlock()
	if m.leftGossip {
		return
	}
	meta := m.currentMeta()
	encoded, err := meta.encode()
	if err != nil {
		m.log.Error("cannot publish gossip metadata", "error", err)
		return
	}
	m.mu.Lock()
	changed := meta != m.meta
	m.meta, m.encodedMeta = meta, encoded
	list := m.list
	m.mu.Unlock()
	if !changed || list == nil {
		return
	}
	if err := list.UpdateNode(m.cfg.BroadcastTimeout); err != nil {
		m.log.Warn("gossip metadata update did not reach another member; the next "+
			"gossip round sends it", "error", err, "timeout", m.cfg.BroadcastTimeout)
	}
}

// runMetadata keeps the metadata current, because Raft state and last index
// change as the node bootstraps and replicates, and prunes the member table.
func (m *Manager) runMetadata() {
	for m.sleep(m.cfg.ReconcileInterval, nil) {
		m.publishMeta()
		m.pruneMembers()
	}
}
