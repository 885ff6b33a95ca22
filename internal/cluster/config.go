package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Defaults for the zero values of Config.
const (
	DefaultRetryJoinInterval       = 5 * time.Second
	DefaultServerStabilizationTime = 10 * time.Second
	DefaultDeadServerGrace         = 30 * time.Second
	DefaultReconcileInterval       = 2 * time.Second
	// DefaultMinQuorum is MinQuorum for a node with BootstrapExpect 0: 3 voters is
	// the smallest Raft cluster that keeps a majority after losing one.
	DefaultMinQuorum = 3
	// DefaultMaxTrailingLogs is how many log entries a non-voter may trail the
	// leader by and still count as caught up, the default of Consul's autopilot.
	DefaultMaxTrailingLogs = 250
	// DefaultMembershipChangeTimeout bounds the wait for Raft to accept one
	// membership change.
	DefaultMembershipChangeTimeout = 10 * time.Second
	// DefaultBroadcastTimeout bounds the wait for a metadata update or a leave
	// message to reach another member.
	DefaultBroadcastTimeout = 5 * time.Second
	// DefaultGossipDeadNodeReclaimTime is how long a dead member's name stays bound
	// to its old gossip address. After it, a restarted node may reuse the name
	// from a new address; before it, memberlist rejects it as a name conflict.
	DefaultGossipDeadNodeReclaimTime = 30 * time.Second
	// DefaultDeadMemberRetention is how long Members keeps listing a dead or left
	// member that is no longer in the Raft configuration.
	DefaultDeadMemberRetention = 24 * time.Hour
	// DefaultRaftProbeTimeout bounds one RaftProbe call: the dial, the TLS
	// handshake and the wait for the member to reject this node's certificate.
	DefaultRaftProbeTimeout = 5 * time.Second
)

// Config configures a Manager. Zero durations and counts take the defaults named
// on each field.
type Config struct {
	// NodeName is this node's gossip name and Raft server ID. It must equal the
	// store's node ID and stay the same across restarts.
	NodeName string
	// GossipBindAddr is the host:port memberlist listens on, TCP and UDP. Port 0
	// picks a free port.
	GossipBindAddr string
	// GossipAdvertiseAddr is the host:port other members dial. Empty means the
	// bound address.
	GossipAdvertiseAddr string
	// GossipKey is the AES key that encrypts gossip: 16, 24 or 32 bytes. Nil turns
	// encryption off, which is logged as a warning. Members with different keys
	// cannot join each other.
	GossipKey []byte
	// Join contains gossip addresses (host:port) of servers to join. Start tries
	// them every RetryJoinInterval until one of them responds.
	Join []string
	// RetryJoinInterval is the wait between join attempts. Default:
	// DefaultRetryJoinInterval.
	RetryJoinInterval time.Duration
	// BootstrapExpect is how many servers form a new cluster together: 0 never
	// bootstraps and only joins, 1 bootstraps this node alone, N bootstraps once N
	// servers without Raft state see each other through gossip.
	BootstrapExpect int
	// RaftAdvertiseAddr is the Raft address other servers dial, sent in gossip
	// metadata. Empty means the store's transport address.
	RaftAdvertiseAddr string
	// RPCAddr is this node's RPC address, sent in gossip metadata so that other
	// nodes can forward requests to the leader. Empty sends none.
	RPCAddr string
	// ServerStabilizationTime is how long a non-voter must stay alive, caught up
	// and at one address before the leader promotes it to voter. Default:
	// DefaultServerStabilizationTime.
	ServerStabilizationTime time.Duration
	// MaxTrailingLogs is how many entries a non-voter may trail the leader's last
	// index and still count as caught up. Default: DefaultMaxTrailingLogs.
	MaxTrailingLogs uint64
	// DisableDeadServerCleanup stops the leader from removing dead servers. Left
	// servers are still removed. The zero value enables cleanup.
	DisableDeadServerCleanup bool
	// DeadServerGrace is how long a server must be dead in gossip, or missing from
	// it, before the leader removes it. Default: DefaultDeadServerGrace.
	DeadServerGrace time.Duration
	// MinQuorum is the number of voters below which dead-server cleanup stops.
	// Default: BootstrapExpect, or DefaultMinQuorum when BootstrapExpect is 0.
	MinQuorum int
	// ReconcileInterval is how often the leader compares gossip with the Raft
	// configuration, and how often every node refreshes its gossip metadata.
	// Default: DefaultReconcileInterval.
	ReconcileInterval time.Duration
	// MembershipChangeTimeout bounds the wait for Raft to accept one membership
	// change. Default: DefaultMembershipChangeTimeout.
	MembershipChangeTimeout time.Duration
	// BroadcastTimeout bounds the wait for a metadata update or leave message to
	// reach another member. Default: DefaultBroadcastTimeout.
	BroadcastTimeout time.Duration
	// GossipDeadNodeReclaimTime is how long a dead member's name stays bound to
	// its gossip address. Default: DefaultGossipDeadNodeReclaimTime.
	GossipDeadNodeReclaimTime time.Duration
	// DeadMemberRetention is how long Members lists a dead or left member that is
	// not in the Raft configuration. Default: DefaultDeadMemberRetention.
	DeadMemberRetention time.Duration
	// AddressBook, when set, receives the Raft address of every server. Give the
	// same book to raft.Config.ServerAddressProvider; see [AddressBook].
	AddressBook *AddressBook
	// RaftProbe, when set, checks that a member's Raft address accepts this node
	// over the cluster transport, for example with a mutual TLS handshake. The
	// leader adds a member to the Raft configuration only after it passes, and a
	// server waiting for BootstrapExpect counts a member, and bootstraps with it,
	// only after it passes. So a node with the gossip key but no valid node
	// certificate stays out. Members already in the configuration are never
	// probed. Nil adds and counts members unchecked.
	RaftProbe func(ctx context.Context, raftAddr string) error
	// RaftProbeTimeout bounds one RaftProbe call. Default: DefaultRaftProbeTimeout.
	RaftProbeTimeout time.Duration
	// Logger receives the manager's and memberlist's logs. Nil discards them.
	Logger *slog.Logger

	// tuneGossip lets tests shorten memberlist's failure detection.
	tuneGossip func(*memberlist.Config)
}

// withDefaults returns cfg with every zero setting replaced by its default.
func (cfg Config) withDefaults() Config {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&cfg.RetryJoinInterval, DefaultRetryJoinInterval)
	setDefault(&cfg.ServerStabilizationTime, DefaultServerStabilizationTime)
	setDefault(&cfg.MaxTrailingLogs, DefaultMaxTrailingLogs)
	setDefault(&cfg.DeadServerGrace, DefaultDeadServerGrace)
	setDefault(&cfg.ReconcileInterval, DefaultReconcileInterval)
	setDefault(&cfg.MembershipChangeTimeout, DefaultMembershipChangeTimeout)
	setDefault(&cfg.BroadcastTimeout, DefaultBroadcastTimeout)
	setDefault(&cfg.GossipDeadNodeReclaimTime, DefaultGossipDeadNodeReclaimTime)
	setDefault(&cfg.DeadMemberRetention, DefaultDeadMemberRetention)
	setDefault(&cfg.RaftProbeTimeout, DefaultRaftProbeTimeout)
	if cfg.MinQuorum == 0 {
		cfg.MinQuorum = DefaultMinQuorum
		if cfg.BootstrapExpect > 0 {
			cfg.MinQuorum = cfg.BootstrapExpect
		}
	}
	return cfg
}

func setDefault[T comparable](value *T, fallback T) {
	var zero T
	if *value == zero {
		*value = fallback
	}
}

// validate checks the settings that New needs before anything starts.
func (cfg Config) validate() error {
	if cfg.NodeName == "" {
		return fmt.Errorf("cluster: the node name is empty; set a name unique in the " +
			"cluster")
	}
	if _, err := splitGossipAddr("gossip bind address", cfg.GossipBindAddr); err != nil {
		return err
	}
	if cfg.GossipAdvertiseAddr != "" {
		_, err := splitGossipAddr("gossip advertise address", cfg.GossipAdvertiseAddr)
		if err != nil {
			return err
		}
	}
	if cfg.GossipKey != nil {
		if err := memberlist.ValidateKey(cfg.GossipKey); err != nil {
			return fmt.Errorf("cluster: the gossip key has %d bytes: %w; use a key of 16, "+
				"24 or 32 bytes", len(cfg.GossipKey), err)
		}
	}
	for i, address := range cfg.Join {
		if _, _, err := net.SplitHostPort(address); err != nil {
			return fmt.Errorf("cluster: join address %d %q is invalid: %w; use the "+
				"host:port of another server's gossip listener", i, address, err)
		}
	}
	if cfg.BootstrapExpect < 0 {
		return fmt.Errorf("cluster: bootstrap expect is %d; set 0 to only join, 1 for a "+
			"single server or the number of initial servers", cfg.BootstrapExpect)
	}
	if cfg.MinQuorum < 0 {
		return fmt.Errorf("cluster: min quorum is %d; set a positive number of voters or "+
			"0 for the default", cfg.MinQuorum)
	}
	return validateDurations(cfg)
}

func validateDurations(cfg Config) error {
	for _, check := range []struct {
		name  string
		value time.Duration
	}{
		{"retry join interval", cfg.RetryJoinInterval},
		{"server stabilization time", cfg.ServerStabilizationTime},
		{"dead server grace", cfg.DeadServerGrace},
		{"reconcile interval", cfg.ReconcileInterval},
		{"membership change timeout", cfg.MembershipChangeTimeout},
		{"broadcast timeout", cfg.BroadcastTimeout},
		{"gossip dead node reclaim time", cfg.GossipDeadNodeReclaimTime},
		{"dead member retention", cfg.DeadMemberRetention},
		{"Raft probe timeout", cfg.RaftProbeTimeout},
	} {
		if check.value < 0 {
			return fmt.Errorf("cluster: the %s is %s; set a positive duration or 0 for "+
				"the default", check.name, check.value)
		}
	}
	return nil
}

// gossipAddr is a parsed gossip host:port.
type gossipAddr struct {
	host string
	port int
}

func splitGossipAddr(name, address string) (gossipAddr, error) {
	host, portText, err := net.SplitHostPort(address)
	if err == nil && net.ParseIP(host) == nil {
		err = fmt.Errorf("the host %q is not an IP address", host)
	}
	var port int
	if err == nil {
		port, err = strconv.Atoi(portText)
		if err == nil && (port < 0 || port > 65535) {
			err = fmt.Errorf("port %d is out of range", port)
		}
	}
	if err != nil {
		return gossipAddr{}, fmt.Errorf("cluster: the %s %q is invalid: %w; use host:port "+
			"with an IP address, for example 127.0.0.1:8301", name, address, err)
	}
	return gossipAddr{host: host, port: port}, nil
}
