package raft

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"
)

// Defaults for the zero values of Config.
const (
	// DefaultApplyTimeout bounds one Apply, from submission until the state machine
	// returns its result.
	DefaultApplyTimeout = 10 * time.Second
	// DefaultSnapshotRetain is how many snapshot files are kept.
	DefaultSnapshotRetain = 2
	// DefaultBoltOpenTimeout bounds the wait for the lock on raft.db.
	DefaultBoltOpenTimeout = 5 * time.Second
	// DefaultLogCacheSize is how many recent log entries are kept in memory, so
	// that replication to followers rarely reads the BoltDB file.
	DefaultLogCacheSize = 512
	// DefaultTransportMaxPool is how many idle connections the TCP transport keeps
	// per peer.
	DefaultTransportMaxPool = 3
	// DefaultTransportTimeout bounds one write of the TCP transport. Snapshot
	// installs get a longer deadline, scaled by size, from hashicorp/raft.
	DefaultTransportTimeout = 10 * time.Second
)

// Config configures one node's store. Zero durations and counts take the defaults
// named on each field.
type Config struct {
	// NodeID is this node's Raft server ID. It must stay the same across restarts.
	NodeID string
	// DataDir is the node's data directory. The store keeps its files in DataDir/raft.
	DataDir string
	// BindAddr is the host:port the TCP transport listens on. Only used when
	// Transport is nil.
	BindAddr string
	// AdvertiseAddr is the host:port peers dial, when it differs from BindAddr (for
	// example when BindAddr is 0.0.0.0). Only used when Transport is nil.
	AdvertiseAddr string
	// Bootstrap makes a node without Raft state form a new cluster with itself as
	// the only voter. A node with Raft state never bootstraps again.
	Bootstrap bool
	// Transport carries Raft traffic, for example over a TLS stream layer. When nil,
	// Open creates a TCP transport on BindAddr. The store's Close shuts the
	// transport down either way, because Raft's shutdown closes it. When Open
	// fails, an injected transport stays open for the caller to close.
	Transport hraft.Transport
	// ServerAddressProvider, when set, returns the current address of a server by
	// ID ahead of the address in the Raft configuration, so that servers whose
	// addresses all changed can still reach each other and elect a leader. Only
	// used when Transport is nil.
	ServerAddressProvider hraft.ServerAddressProvider
	// Logger receives the store's and hashicorp/raft's logs. Nil discards them.
	Logger hclog.Logger

	// ApplyTimeout bounds one Apply. Default: DefaultApplyTimeout.
	ApplyTimeout time.Duration
	// SnapshotRetain is how many snapshot files are kept. Default:
	// DefaultSnapshotRetain.
	SnapshotRetain int
	// SnapshotThreshold is how many log entries since the last snapshot start a new
	// one. Default: 8192, from hashicorp/raft v1.7.2.
	SnapshotThreshold uint64
	// SnapshotInterval is how often Raft checks SnapshotThreshold. Default: 120s,
	// from hashicorp/raft v1.7.2.
	SnapshotInterval time.Duration
	// TrailingLogs is how many log entries stay after a snapshot. A follower that
	// is fewer entries behind gets entries instead of the whole snapshot.
	// Default: 10240, from hashicorp/raft v1.7.2.
	TrailingLogs uint64
	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout tune failure
	// detection. Defaults: 1s, 1s and 500ms, from hashicorp/raft v1.7.2.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration

	// BoltOpenTimeout bounds the wait for the file lock on raft.db, which another
	// process using the same data directory holds. Default: DefaultBoltOpenTimeout.
	BoltOpenTimeout time.Duration
	// LogCacheSize is how many recent log entries are cached in memory. Default:
	// DefaultLogCacheSize.
	LogCacheSize int
	// TransportMaxPool and TransportTimeout configure the TCP transport. Defaults:
	// DefaultTransportMaxPool and DefaultTransportTimeout.
	TransportMaxPool int
	TransportTimeout time.Duration
}

// withDefaults returns cfg with every zero setting replaced by its default.
func (cfg Config) withDefaults() Config {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	setDefault(&cfg.ApplyTimeout, DefaultApplyTimeout)
	setDefault(&cfg.SnapshotRetain, DefaultSnapshotRetain)
	setDefault(&cfg.BoltOpenTimeout, DefaultBoltOpenTimeout)
	setDefault(&cfg.LogCacheSize, DefaultLogCacheSize)
	setDefault(&cfg.TransportMaxPool, DefaultTransportMaxPool)
	setDefault(&cfg.TransportTimeout, DefaultTransportTimeout)
	return cfg
}

func setDefault[T comparable](value *T, fallback T) {
	var zero T
	if *value == zero {
		*value = fallback
	}
}

// validate checks the settings that Open needs before it touches the disk.
func (cfg Config) validate() error {
	switch {
	case cfg.NodeID == "":
		return fmt.Errorf("raft: the node ID is empty; set a stable, unique node ID")
	case cfg.DataDir == "":
		return fmt.Errorf("raft: the data directory is empty; set the data directory")
	case cfg.Transport == nil && cfg.BindAddr == "":
		return fmt.Errorf("raft: the bind address is empty and no transport is set; " +
			"set a host:port to listen on")
	}
	for _, check := range []struct {
		name  string
		value time.Duration
	}{
		{"apply timeout", cfg.ApplyTimeout},
		{"bolt open timeout", cfg.BoltOpenTimeout},
		{"transport timeout", cfg.TransportTimeout},
		{"snapshot interval", cfg.SnapshotInterval},
		{"heartbeat timeout", cfg.HeartbeatTimeout},
		{"election timeout", cfg.ElectionTimeout},
		{"leader lease timeout", cfg.LeaderLeaseTimeout},
	} {
		if check.value < 0 {
			return fmt.Errorf("raft: the %s is %s; set a positive duration or 0 for "+
				"the default", check.name, check.value)
		}
	}
	for _, check := range []struct {
		name  string
		value int
	}{
		{"snapshot retain count", cfg.SnapshotRetain},
		{"log cache size", cfg.LogCacheSize},
		{"transport connection pool size", cfg.TransportMaxPool},
	} {
		if check.value < 0 {
			return fmt.Errorf("raft: the %s is %d; set a positive count or 0 for the "+
				"default", check.name, check.value)
		}
	}
	return nil
}

// raftConfig returns the hashicorp/raft configuration for cfg.
func (cfg Config) raftConfig(notify chan<- bool) (*hraft.Config, error) {
	conf := hraft.DefaultConfig()
	conf.LocalID = hraft.ServerID(cfg.NodeID)
	conf.Logger = cfg.Logger
	conf.NotifyCh = notify
	setNonZero(&conf.SnapshotThreshold, cfg.SnapshotThreshold)
	setNonZero(&conf.SnapshotInterval, cfg.SnapshotInterval)
	setNonZero(&conf.TrailingLogs, cfg.TrailingLogs)
	setNonZero(&conf.HeartbeatTimeout, cfg.HeartbeatTimeout)
	setNonZero(&conf.ElectionTimeout, cfg.ElectionTimeout)
	setNonZero(&conf.LeaderLeaseTimeout, cfg.LeaderLeaseTimeout)
	if err := hraft.ValidateConfig(conf); err != nil {
		return nil, fmt.Errorf("raft: invalid Raft settings for node %s: %w; adjust the "+
			"heartbeat, election and leader lease timeouts", cfg.NodeID, err)
	}
	return conf, nil
}

func setNonZero[T comparable](target *T, value T) {
	var zero T
	if value != zero {
		*target = value
	}
}
