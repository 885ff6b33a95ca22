package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var clusterValidationCases = []validationCase{
	{"raft address missing", func(c *Config) { c.Cluster.RaftAddress = "" },
		"config: cluster.raft_address: missing value: set host:port, such as 127.0.0.1:8443"},
	{"raft wildcard address alone", func(c *Config) { c.Cluster.RaftAddress = "0.0.0.0:8300" },
		`config: cluster.raft_advertise_address: missing value: cluster.raft_address ` +
			`"0.0.0.0:8300" is not an address other nodes can dial; ` +
			"set the address they should use"},
	{"raft port zero alone", func(c *Config) { c.Cluster.RaftAddress = "127.0.0.1:0" },
		`config: cluster.raft_advertise_address: missing value: cluster.raft_address ` +
			`"127.0.0.1:0" is not an address other nodes can dial; ` +
			"set the address they should use"},
	{"raft wildcard advertise", func(c *Config) {
		c.Cluster.RaftAdvertiseAddress = "[::]:8300"
	}, `config: cluster.raft_advertise_address: invalid value "[::]:8300": use an address ` +
		"other nodes can dial, not an unspecified or empty host or port 0"},
	{"raft advertise without port", func(c *Config) {
		c.Cluster.RaftAdvertiseAddress = "node-1"
	}, `config: cluster.raft_advertise_address: invalid value "node-1": ` +
		"use host:port, such as 127.0.0.1:8443"},
	{"gossip address missing", func(c *Config) { c.Cluster.GossipAddress = "" },
		"config: cluster.gossip_address: missing value: set host:port, such as 127.0.0.1:8443"},
	{"gossip wildcard address alone", func(c *Config) {
		c.Cluster.GossipAddress = "0.0.0.0:8301"
	}, `config: cluster.gossip_advertise_address: missing value: cluster.gossip_address ` +
		`"0.0.0.0:8301" is not an address other nodes can dial; ` +
		"set the address they should use"},
	{"gossip advertise port zero", func(c *Config) {
		c.Cluster.GossipAdvertiseAddress = "10.0.0.1:0"
	}, `config: cluster.gossip_advertise_address: invalid value "10.0.0.1:0": use an ` +
		"address other nodes can dial, not an unspecified or empty host or port 0"},
	{"gossip on raft port", func(c *Config) { c.Cluster.GossipAddress = "127.0.0.1:8300" },
		`config: cluster.gossip_address: invalid value "127.0.0.1:8300": use another port ` +
			"than cluster.raft_address (127.0.0.1:8300); both listen on TCP"},
	{"gossip wildcard on raft port", func(c *Config) {
		c.Cluster.GossipAddress = "0.0.0.0:8300"
		c.Cluster.GossipAdvertiseAddress = "10.0.0.1:8300"
	}, `config: cluster.gossip_address: invalid value "0.0.0.0:8300": use another port ` +
		"than cluster.raft_address (127.0.0.1:8300); both listen on TCP"},
	{"join with bootstrap one", func(c *Config) { c.Cluster.Join = []string{"10.0.0.1:8301"} },
		"config: cluster.bootstrap_expect: invalid value 1: with cluster.join set, this node " +
			"would bootstrap a separate single-node cluster; set bootstrap_expect to the " +
			"initial cluster size on every initial server, or 0 on a node joining an " +
			"existing cluster"},
	{"bootstrap zero without join", func(c *Config) { c.Cluster.BootstrapExpect = 0 },
		"config: cluster.join: missing value: cluster.bootstrap_expect is 0, so this node " +
			"never bootstraps and can only join; list the gossip addresses (host:port) of " +
			"servers in the cluster"},
	{"bootstrap expect negative", func(c *Config) { c.Cluster.BootstrapExpect = -1 },
		"config: cluster.bootstrap_expect: invalid value -1: use 0 to only join, " +
			"1 for a single node, or the initial number of servers"},
	{"join address without port", func(c *Config) {
		c.Cluster.BootstrapExpect = 0
		c.Cluster.Join = []string{"10.0.0.1"}
	}, `config: cluster.join: invalid value "10.0.0.1": ` +
		"use the gossip host:port of a server, such as 10.0.0.1:8301"},
	{"join wildcard address", func(c *Config) {
		c.Cluster.BootstrapExpect = 0
		c.Cluster.Join = []string{"0.0.0.0:8301"}
	}, `config: cluster.join: invalid value "0.0.0.0:8301": ` +
		"use the gossip host:port of a server, such as 10.0.0.1:8301"},
	{"join address twice", func(c *Config) {
		c.Cluster.BootstrapExpect = 0
		c.Cluster.Join = []string{"10.0.0.1:8301", "10.0.0.2:8301", "10.0.0.1:8301"}
	}, `config: cluster.join: invalid value "10.0.0.1:8301": ` +
		"listed twice; keep one entry per server"},
	{"three servers without TLS", func(c *Config) { c.Cluster.BootstrapExpect = 3 },
		"config: cluster.tls: missing value: cluster traffic between nodes must use mutual " +
			"TLS: set cluster.tls.ca_file, cert_file and key_file (create them with " +
			"bundlex cluster tls create-ca and create-cert)"},
	{"joining node without TLS", func(c *Config) {
		c.Cluster.BootstrapExpect = 0
		c.Cluster.Join = []string{"10.0.0.1:8301"}
	}, "config: cluster.tls: missing value: cluster traffic between nodes must use mutual " +
		"TLS: set cluster.tls.ca_file, cert_file and key_file (create them with " +
		"bundlex cluster tls create-ca and create-cert)"},
	{"retry join below minimum", func(c *Config) {
		c.Cluster.RetryJoinInterval = 50 * time.Millisecond
	}, "config: cluster.retry_join_interval: invalid value 50ms: " +
		"use at least 100ms, such as 5s"},
	{"stabilization time zero", func(c *Config) { c.Cluster.ServerStabilizationTime = 0 },
		"config: cluster.server_stabilization_time: invalid value 0s: " +
			"use a positive duration, such as 10s"},
	{"dead server grace zero", func(c *Config) { c.Cluster.DeadServerGrace = 0 },
		"config: cluster.dead_server_grace: invalid value 0s: " +
			"use a positive duration, such as 30s"},
	{"reconcile interval negative", func(c *Config) { c.Cluster.ReconcileInterval = -time.Second },
		"config: cluster.reconcile_interval: invalid value -1s: " +
			"use a positive duration, such as 2s"},
	{"min quorum negative", func(c *Config) { c.Cluster.MinQuorum = -1 },
		"config: cluster.min_quorum: invalid value -1: " +
			"use 0 to derive it from cluster.bootstrap_expect, or a positive count"},
	{"min quorum below three", func(c *Config) {
		c.Cluster.BootstrapExpect = 3
		c.Cluster.MinQuorum = 2
	}, "config: cluster.min_quorum: invalid value 2: use at least 3 because " +
		"cluster.bootstrap_expect is 3, or 0 to derive it from cluster.bootstrap_expect"},
}

func TestValidateClusterErrorMessages(t *testing.T) {
	for _, tt := range clusterValidationCases {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.modify(cfg)
			err := cfg.Validate()
			require.Error(t, err)
			require.Contains(t, errorLines(err), tt.want)
		})
	}
}

func TestValidateAcceptsClusterConfigs(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config, tls ClusterTLSConfig)
	}{
		{"single node defaults", func(c *Config, _ ClusterTLSConfig) {}},
		{"single node with TLS", func(c *Config, tls ClusterTLSConfig) { c.Cluster.TLS = tls }},
		{"three initial servers", func(c *Config, tls ClusterTLSConfig) {
			c.Cluster.BootstrapExpect = 3
			c.Cluster.Join = []string{"10.0.0.2:8301", "10.0.0.3:8301"}
			c.Cluster.TLS = tls
		}},
		{"first server without join", func(c *Config, tls ClusterTLSConfig) {
			c.Cluster.BootstrapExpect = 3
			c.Cluster.TLS = tls
		}},
		{"even bootstrap expect", func(c *Config, tls ClusterTLSConfig) {
			c.Cluster.BootstrapExpect = 2
			c.Cluster.MinQuorum = 2
			c.Cluster.TLS = tls
		}},
		{"joining node", func(c *Config, tls ClusterTLSConfig) {
			c.Cluster.BootstrapExpect = 0
			c.Cluster.Join = []string{"bundlex-1.internal:8301"}
			c.Cluster.TLS = tls
		}},
		{"min quorum above expect", func(c *Config, tls ClusterTLSConfig) {
			c.Cluster.BootstrapExpect = 3
			c.Cluster.MinQuorum = 5
			c.Cluster.TLS = tls
		}},
		{"min quorum one alone", func(c *Config, _ ClusterTLSConfig) { c.Cluster.MinQuorum = 1 }},
		{"retry join at minimum", func(c *Config, _ ClusterTLSConfig) {
			c.Cluster.RetryJoinInterval = 100 * time.Millisecond
		}},
		{"same port other host", func(c *Config, _ ClusterTLSConfig) {
			c.Cluster.GossipAddress = "127.0.0.2:8300"
		}},
		{"both on free ports", func(c *Config, _ ClusterTLSConfig) {
			c.Cluster.RaftAddress = "127.0.0.1:0"
			c.Cluster.RaftAdvertiseAddress = "127.0.0.1:8300"
			c.Cluster.GossipAddress = "127.0.0.1:0"
			c.Cluster.GossipAdvertiseAddress = "127.0.0.1:8301"
		}},
		{"IPv6 advertise addresses", func(c *Config, _ ClusterTLSConfig) {
			c.Cluster.RaftAddress = "[::]:8300"
			c.Cluster.RaftAdvertiseAddress = "[2001:db8::1]:8300"
			c.Cluster.GossipAddress = "[::]:8301"
			c.Cluster.GossipAdvertiseAddress = "[2001:db8::1]:8301"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.modify(cfg, clusterTLSFiles(t))
			require.NoError(t, cfg.Validate())
		})
	}
}

func TestValidateClusterTLSFiles(t *testing.T) {
	const together = ": missing value: cluster.tls.ca_file, cert_file and key_file " +
		"are used together; set all three or none"
	const unreadable = "check the path and that the node's user may read the file"
	tests := []struct {
		name   string
		modify func(files *ClusterTLSConfig) string
		want   func(files ClusterTLSConfig) []string
	}{
		{"only CA file", func(f *ClusterTLSConfig) string {
			f.CertFile, f.KeyFile = "", ""
			return ""
		}, func(f ClusterTLSConfig) []string {
			return []string{"config: cluster.tls.cert_file" + together,
				"config: cluster.tls.key_file" + together}
		}},
		{"key file missing", func(f *ClusterTLSConfig) string {
			f.KeyFile = ""
			return ""
		}, func(f ClusterTLSConfig) []string {
			return []string{"config: cluster.tls.key_file" + together}
		}},
		{"CA file absent", func(f *ClusterTLSConfig) string {
			f.CAFile = filepath.Join(filepath.Dir(f.CAFile), "absent.pem")
			return ""
		}, func(f ClusterTLSConfig) []string {
			return []string{`config: cluster.tls.ca_file: invalid value "` + f.CAFile +
				`": no such file or directory; ` + unreadable}
		}},
		{"cert file is directory", func(f *ClusterTLSConfig) string {
			f.CertFile = filepath.Dir(f.CertFile)
			return ""
		}, func(f ClusterTLSConfig) []string {
			return []string{`config: cluster.tls.cert_file: invalid value "` + f.CertFile +
				`": use a PEM file, not a directory`}
		}},
		{"key file unreadable", func(f *ClusterTLSConfig) string {
			if os.Geteuid() == 0 {
				return "root reads files whatever their mode"
			}
			if err := os.Chmod(f.KeyFile, 0o000); err != nil {
				return err.Error()
			}
			return ""
		}, func(f ClusterTLSConfig) []string {
			return []string{`config: cluster.tls.key_file: invalid value "` + f.KeyFile +
				`": permission denied; ` + unreadable}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := clusterTLSFiles(t)
			if reason := tt.modify(&files); reason != "" {
				t.Skip(reason)
			}
			cfg := validConfig()
			cfg.Cluster.TLS = files
			require.Equal(t, tt.want(files), errorLines(cfg.Validate()))
		})
	}
}

func TestValidateTLSErrorsReplaceRequired(t *testing.T) {
	// A partial set names the missing files rather than asking for all three.
	files := clusterTLSFiles(t)
	cfg := validConfig()
	cfg.Cluster.BootstrapExpect = 3
	cfg.Cluster.TLS = ClusterTLSConfig{CAFile: files.CAFile, CertFile: files.CertFile}
	require.Equal(t, []string{"config: cluster.tls.key_file: missing value: " +
		"cluster.tls.ca_file, cert_file and key_file are used together; set all three or none",
	}, errorLines(cfg.Validate()))
}
