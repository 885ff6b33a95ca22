package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/raft"
)

// openSingleStore opens a store for node n1 that leads alone.
func openSingleStore(t *testing.T) *raft.Store {
	store, err := raft.Open(raft.Config{NodeID: "n1", DataDir: t.TempDir(),
		BindAddr: "127.0.0.1:0", Bootstrap: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	return store
}

func TestNewRejectsBadConfig(t *testing.T) {
	store := openSingleStore(t)
	valid := Config{NodeName: "n1", GossipBindAddr: "127.0.0.1:0"}
	for _, tc := range []struct {
		name    string
		change  func(*Config)
		message string
	}{
		{"empty node name", func(c *Config) { c.NodeName = "" },
			"cluster: the node name is empty"},
		{"node name differs", func(c *Config) { c.NodeName = "n2" },
			`cluster: the node name "n2" differs from the Raft node ID "n1"`},
		{"bind address hostname", func(c *Config) { c.GossipBindAddr = "localhost:0" },
			`cluster: the gossip bind address "localhost:0" is invalid: the host ` +
				`"localhost" is not an IP address`},
		{"bind address port range", func(c *Config) { c.GossipBindAddr = "127.0.0.1:70000" },
			"port 70000 is out of range"},
		{"advertise address without port",
			func(c *Config) { c.GossipAdvertiseAddr = "10.0.0.1" },
			`cluster: the gossip advertise address "10.0.0.1" is invalid`},
		{"gossip key length", func(c *Config) { c.GossipKey = make([]byte, 10) },
			"cluster: the gossip key has 10 bytes"},
		{"join address without port", func(c *Config) { c.Join = []string{"n2"} },
			`cluster: join address 0 "n2" is invalid`},
		{"negative bootstrap expect", func(c *Config) { c.BootstrapExpect = -1 },
			"cluster: bootstrap expect is -1"},
		{"negative min quorum", func(c *Config) { c.MinQuorum = -2 },
			"cluster: min quorum is -2"},
		{"negative dead server grace", func(c *Config) { c.DeadServerGrace = -time.Second },
			"cluster: the dead server grace is -1s"},
		{"raft address without port", func(c *Config) { c.RaftAdvertiseAddr = "10.0.0.1" },
			`cluster: the Raft advertise address "10.0.0.1" is invalid`},
		{"oversized gossip metadata", func(c *Config) {
			c.RaftAdvertiseAddr = strings.Repeat("a", 500) + ":8300"
		}, "more than the memberlist limit of 512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.change(&cfg)
			_, err := New(cfg, store)
			require.ErrorContains(t, err, tc.message)
		})
	}
	t.Run("nil store rejected", func(t *testing.T) {
		_, err := New(valid, nil)
		require.ErrorContains(t, err, "cluster: the Raft store is nil")
	})
}

func TestConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		expect    int
		minQuorum int
		want      int
	}{
		{"joining node min quorum", 0, 0, DefaultMinQuorum},
		{"bootstrap expect min quorum", 5, 0, 5},
		{"single server min quorum", 1, 0, 1},
		{"explicit min quorum kept", 5, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{BootstrapExpect: tc.expect, MinQuorum: tc.minQuorum}.withDefaults()
			require.Equal(t, tc.want, cfg.MinQuorum)
		})
	}
	cfg := Config{}.withDefaults()
	require.Equal(t, DefaultRetryJoinInterval, cfg.RetryJoinInterval)
	require.Equal(t, DefaultServerStabilizationTime, cfg.ServerStabilizationTime)
	require.Equal(t, DefaultDeadServerGrace, cfg.DeadServerGrace)
	require.Equal(t, DefaultReconcileInterval, cfg.ReconcileInterval)
	require.Equal(t, uint64(DefaultMaxTrailingLogs), cfg.MaxTrailingLogs)
	require.False(t, cfg.DisableDeadServerCleanup)
	require.NotNil(t, cfg.Logger)
}

func TestManagerLifecycleErrors(t *testing.T) {
	store := openSingleStore(t)
	manager, err := New(Config{NodeName: "n1", GossipBindAddr: "127.0.0.1:0"}, store)
	require.NoError(t, err)
	require.ErrorContains(t, manager.Leave(context.Background()),
		"cluster: node n1 cannot leave before Start")
	require.Empty(t, manager.GossipAddr())

	require.NoError(t, manager.Start(context.Background()))
	require.ErrorContains(t, manager.Start(context.Background()),
		"cluster: the manager of node n1 was already started")
	require.NoError(t, manager.Shutdown())
	require.NoError(t, manager.Shutdown())
	require.ErrorContains(t, manager.Leave(context.Background()),
		"cluster: node n1 cannot leave after Shutdown or Leave")
}
