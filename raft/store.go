package raft

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Store is one node's replicated store: hashicorp/raft with a BoltDB log and file
// snapshots, and the state machine that holds the records. All methods are safe for
// concurrent use.
type Store struct {
	cfg    Config
	logger hclog.Logger
	raft   *hraft.Raft
	fsm    *fsm
	bolt   *raftboltdb.BoltStore
	// transport is the configured or the created transport.
	transport hraft.Transport
	// logs is the log store that Raft uses, a cache in front of bolt.
	logs hraft.LogStore
	// snaps is the snapshot store that Raft uses.
	snaps hraft.SnapshotStore
	// existingState is whether the stores held Raft state at Open.
	existingState bool

	leadership *broadcaster[bool]
	leaders    *broadcaster[struct{}]
	// catchUp closes its channel once the state machine has caught up after Open.
	catchUp  *catchUp
	stop     chan struct{}
	watchers sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Open opens the store under cfg.DataDir/raft and starts Raft. A node that has no
// Raft state and has cfg.Bootstrap set forms a single-voter cluster. Any other node
// waits until a leader contacts it. A recovery file written by [WriteRecoveryFile]
// replaces the Raft configuration before Raft starts.
func Open(cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("raft: create the Raft directory %s: %w", dir, err)
	}
	s := &Store{
		cfg:        cfg,
		logger:     cfg.Logger.Named("store"),
		fsm:        newFSM(cfg.Logger.Named("fsm")),
		leadership: newBroadcaster[bool](),
		leaders:    newBroadcaster[struct{}](),
		catchUp:    newCatchUp(),
		stop:       make(chan struct{}),
	}
	if err := s.guardedStart(dir); err != nil {
		return nil, err
	}
	return s, nil
}

// start checks raft.db, opens the stores and the transport and starts Raft. On an
// error or a panic it releases what it opened, so that the next Open on the same
// directory finds it unlocked.
func (s *Store) start(dir string) (err error) {
	cfg := s.cfg
	dbPath := filepath.Join(dir, "raft.db")
	if err := s.verifyDatabase(dbPath); err != nil {
		return err
	}
	s.bolt, err = raftboltdb.New(raftboltdb.Options{
		Path:        dbPath,
		BoltOptions: &bbolt.Options{Timeout: cfg.BoltOpenTimeout},
	})
	if err != nil {
		return fmt.Errorf("raft: open the Raft database %s: %w; if it timed out, another "+
			"process is using the data directory, so stop it", dbPath, err)
	}
	transport := cfg.Transport
	started := false
	defer func() {
		if started {
			return
		}
		if closer, ok := transport.(hraft.WithClose); ok && cfg.Transport == nil {
			_ = closer.Close()
		}
		_ = s.bolt.Close()
	}()

	s.logs, err = hraft.NewLogCache(cfg.LogCacheSize, s.bolt)
	if err != nil {
		return fmt.Errorf("raft: create a log cache of %d entries: %w", cfg.LogCacheSize, err)
	}
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(dir, cfg.SnapshotRetain,
		cfg.Logger.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("raft: open the snapshot store under %s: %w", dir, err)
	}
	s.snaps = snaps
	if transport == nil {
		// Assign only a working transport: a nil *NetworkTransport in the interface
		// would look set to the cleanup above.
		tcp, err := newTCPTransport(cfg)
		if err != nil {
			return err
		}
		transport = tcp
	}
	opened := time.Now()
	notify := make(chan bool, 1)
	conf, err := cfg.raftConfig(notify)
	if err != nil {
		return err
	}
	if err := s.recoverFromFile(dir, conf, snaps, transport); err != nil {
		return err
	}
	if err := s.bootstrap(conf, snaps, transport); err != nil {
		return err
	}
	s.transport = transport
	s.raft, err = hraft.NewRaft(conf, s.fsm, s.logs, s.bolt, snaps, transport)
	if err != nil {
		return fmt.Errorf("raft: start Raft on node %s: %w", cfg.NodeID, err)
	}
	s.startWatchers(notify)
	// The first reason is there before Open returns; the watcher takes over.
	_, reason := s.checkCurrent()
	s.catchUp.setReason(reason)
	s.watchers.Add(1)
	go s.watchCatchUp(opened)
	started = true
	s.logger.Info("raft store opened", "node", cfg.NodeID, "dir", dir,
		"address", transport.LocalAddr())
	return nil
}

// bootstrap forms a single-voter cluster when cfg.Bootstrap is set and the node has
// no Raft state yet.
func (s *Store) bootstrap(conf *hraft.Config, snaps hraft.SnapshotStore,
	transport hraft.Transport) error {
	existing, err := hraft.HasExistingState(s.logs, s.bolt, snaps)
	if err != nil {
		return fmt.Errorf("raft: check for existing Raft state: %w", err)
	}
	s.existingState = existing
	if existing || !s.cfg.Bootstrap {
		return nil
	}
	membership := hraft.Configuration{Servers: []hraft.Server{{
		Suffrage: hraft.Voter,
		ID:       conf.LocalID,
		Address:  transport.LocalAddr(),
	}}}
	if err := hraft.BootstrapCluster(conf, s.logs, s.bolt, snaps, transport,
		membership); err != nil {
		return fmt.Errorf("raft: bootstrap a cluster with node %s as the only voter: %w",
			conf.LocalID, err)
	}
	s.logger.Info("bootstrapped a new cluster", "node", conf.LocalID,
		"address", transport.LocalAddr())
	return nil
}

func newTCPTransport(cfg Config) (*hraft.NetworkTransport, error) {
	var advertise net.Addr
	if cfg.AdvertiseAddr != "" {
		addr, err := net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("raft: resolve the advertise address %q: %w; set a "+
				"host:port that peers can dial", cfg.AdvertiseAddr, err)
		}
		advertise = addr
	}
	transport, err := hraft.NewTCPTransportWithConfig(cfg.BindAddr, advertise,
		&hraft.NetworkTransportConfig{
			ServerAddressProvider: cfg.ServerAddressProvider,
			MaxPool:               cfg.TransportMaxPool,
			Timeout:               cfg.TransportTimeout,
			Logger:                cfg.Logger.Named("transport"),
		})
	if err != nil {
		return nil, fmt.Errorf("raft: listen for Raft traffic on %s (advertise %q): %w; "+
			"use a free port, and set an advertise address when binding to all interfaces",
			cfg.BindAddr, cfg.AdvertiseAddr, err)
	}
	return transport, nil
}

// Close shuts Raft down, which also closes the transport, and closes the BoltDB
// file so that the data directory can be opened again. It ends every subscription.
// Calls after the first return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft: shut down Raft on node %s: %w",
				s.cfg.NodeID, err))
		}
		close(s.stop)
		s.watchers.Wait()
		if err := s.bolt.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raft: close the Raft database: %w", err))
		}
		s.fsm.changes.close()
		s.leadership.close()
		s.leaders.close()
		s.closeErr = errors.Join(errs...)
		s.logger.Info("raft store closed", "node", s.cfg.NodeID)
	})
	return s.closeErr
}

// startWatchers follows leadership changes: notify carries this node's own
// leadership from Raft, and an observer reports which node leads.
func (s *Store) startWatchers(notify <-chan bool) {
	observations := make(chan hraft.Observation, 1)
	observer := hraft.NewObserver(observations, false, func(o *hraft.Observation) bool {
		_, ok := o.Data.(hraft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(observer)
	s.watchers.Add(1)
	go func() {
		defer s.watchers.Done()
		defer s.raft.DeregisterObserver(observer)
		for {
			select {
			case leader := <-notify:
				s.logger.Info("leadership changed", "node", s.cfg.NodeID, "leader", leader)
				s.leadership.publish(leader)
			case o := <-observations:
				observed := o.Data.(hraft.LeaderObservation)
				s.logger.Info("cluster leader changed", "node", s.cfg.NodeID,
					"leader_id", observed.LeaderID, "leader_address", observed.LeaderAddr)
				s.leaders.publish(struct{}{})
			case <-s.stop:
				return
			}
		}
	}()
}
