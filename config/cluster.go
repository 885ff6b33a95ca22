package config

import (
	"encoding/base64"
	"strings"
	"time"
)

// Cluster defaults and limits. docs/configuration.md repeats them.
const (
	DefaultClusterRaftAddress      = "127.0.0.1:8300"
	DefaultClusterGossipAddress    = "127.0.0.1:8301"
	DefaultRetryJoinInterval       = 5 * time.Second
	DefaultBootstrapExpect         = 1
	DefaultServerStabilizationTime = 10 * time.Second
	DefaultDeadServerGrace         = 30 * time.Second
	DefaultReconcileInterval       = 2 * time.Second
	// MinRetryJoinInterval keeps a node that cannot join from flooding the
	// servers in cluster.join with attempts.
	MinRetryJoinInterval = 100 * time.Millisecond
	// MinFaultTolerantQuorum is the smallest cluster.min_quorum accepted when
	// cluster.bootstrap_expect is 3 or more: 3 servers is the smallest Raft
	// cluster that keeps a majority after losing one.
	MinFaultTolerantQuorum = 3
	// DefaultJoiningNodeMinQuorum is the derived cluster.min_quorum of a node
	// with cluster.bootstrap_expect 0.
	DefaultJoiningNodeMinQuorum = MinFaultTolerantQuorum
)

// ClusterConfig contains the settings a node uses to find the other servers,
// to form or join the Raft cluster and to secure the traffic between nodes.
type ClusterConfig struct {
	// RaftAddress is host:port the Raft transport listens on.
	RaftAddress string
	// RaftAdvertiseAddress is the Raft address other nodes dial. Empty means
	// RaftAddress; see [Config.RaftAdvertiseAddress].
	RaftAdvertiseAddress string
	// GossipAddress is host:port the gossip (memberlist) listener binds, TCP
	// and UDP.
	GossipAddress string
	// GossipAdvertiseAddress is the gossip address other nodes dial. Empty
	// means GossipAddress; see [Config.GossipAdvertiseAddress].
	GossipAdvertiseAddress string
	// Join contains the gossip addresses (host:port) of servers to join.
	Join []string
	// RetryJoinInterval is the wait between two attempts to join.
	RetryJoinInterval time.Duration
	// BootstrapExpect is the number of servers that bootstrap the cluster
	// together: 1 bootstraps this node alone, 0 never bootstraps and only
	// joins, N > 1 bootstraps once N servers see each other through gossip.
	BootstrapExpect int
	// GossipKey is the base64 encoding of the gossip encryption key. Empty
	// means gossip is not encrypted. See [ClusterConfig.GossipKeyBytes].
	GossipKey string
	TLS       ClusterTLSConfig
	// ServerStabilizationTime is how long a new server must stay healthy
	// before it becomes a voter.
	ServerStabilizationTime time.Duration
	// DeadServerGrace is how long a server may stay unreachable before it is
	// removed from the Raft configuration.
	DeadServerGrace time.Duration
	// MinQuorum is the smallest number of voters that dead-server removal
	// leaves. 0 means derived; see [ClusterConfig.EffectiveMinQuorum].
	MinQuorum int
	// ReconcileInterval is how often the leader compares the gossip member
	// list with the Raft configuration.
	ReconcileInterval time.Duration
}

// ClusterTLSConfig contains the PEM files for mutual TLS between nodes. The
// three are set together or not at all.
type ClusterTLSConfig struct {
	// CAFile is the cluster CA certificate that every node certificate chains to.
	CAFile string
	// CertFile and KeyFile are this node's certificate chain and private key.
	CertFile string
	KeyFile  string
}

// Enabled reports whether the cluster TLS files are configured. Validate
// rejects a configuration with only some of them set.
func (t ClusterTLSConfig) Enabled() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != ""
}

// defaultCluster returns the cluster settings of a single node that
// bootstraps itself on loopback.
func defaultCluster() ClusterConfig {
	return ClusterConfig{
		RaftAddress:             DefaultClusterRaftAddress,
		GossipAddress:           DefaultClusterGossipAddress,
		RetryJoinInterval:       DefaultRetryJoinInterval,
		BootstrapExpect:         DefaultBootstrapExpect,
		ServerStabilizationTime: DefaultServerStabilizationTime,
		DeadServerGrace:         DefaultDeadServerGrace,
		ReconcileInterval:       DefaultReconcileInterval,
	}
}

// IsMultiNode reports whether the node is meant to share its Raft cluster
// with other nodes, because it joins others or waits for more than itself.
func (c *ClusterConfig) IsMultiNode() bool {
	return len(c.Join) > 0 || c.BootstrapExpect > 1
}

// GossipKeyBytes returns the decoded gossip key, or nil when cluster.gossip_key
// is empty or not a valid key. Validate reports an invalid key, so after a
// successful Validate nil means that gossip is not encrypted.
func (c *ClusterConfig) GossipKeyBytes() []byte {
	key, err := decodeGossipKey(c.GossipKey)
	if err != nil || !validGossipKeyLength(len(key)) {
		return nil
	}
	return key
}

// EffectiveMinQuorum returns cluster.min_quorum, or the value derived from
// cluster.bootstrap_expect when it is 0: bootstrap_expect itself for an initial
// server, and DefaultJoiningNodeMinQuorum for a node with bootstrap_expect 0.
// NOTE: a joining node cannot know the initial cluster size, so its derived
// value is a guess. Setting min_quorum to the same value on every server makes
// dead-server removal independent of which server leads.
func (c *ClusterConfig) EffectiveMinQuorum() int {
	switch {
	case c.MinQuorum > 0:
		return c.MinQuorum
	case c.BootstrapExpect > 0:
		return c.BootstrapExpect
	default:
		return DefaultJoiningNodeMinQuorum
	}
}

// decodeGossipKey decodes standard base64 with padding, the form that
// "openssl rand -base64 32" prints. Spaces around the key are ignored.
func decodeGossipKey(text string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.TrimSpace(text))
}

// validGossipKeyLength applies memberlist v0.5.4 ValidateKey: the key selects
// AES-128, AES-192 or AES-256, so it has 16, 24 or 32 bytes.
func validGossipKeyLength(n int) bool {
	return n == 16 || n == 24 || n == 32
}

// RaftAdvertiseAddress returns cluster.raft_advertise_address, or
// cluster.raft_address when it is empty.
func (c *Config) RaftAdvertiseAddress() string {
	if c.Cluster.RaftAdvertiseAddress != "" {
		return c.Cluster.RaftAdvertiseAddress
	}
	return c.Cluster.RaftAddress
}

// GossipAdvertiseAddress returns cluster.gossip_advertise_address, or
// cluster.gossip_address when it is empty.
func (c *Config) GossipAdvertiseAddress() string {
	if c.Cluster.GossipAdvertiseAddress != "" {
		return c.Cluster.GossipAdvertiseAddress
	}
	return c.Cluster.GossipAddress
}
