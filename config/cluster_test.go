package config

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// clusterTLSFiles writes three PEM-named files into a temporary directory and
// returns their paths. Validate only checks that they can be opened.
func clusterTLSFiles(t *testing.T) ClusterTLSConfig {
	t.Helper()
	dir := t.TempDir()
	files := ClusterTLSConfig{
		CAFile:   filepath.Join(dir, "cluster-ca.pem"),
		CertFile: filepath.Join(dir, "node.pem"),
		KeyFile:  filepath.Join(dir, "node-key.pem"),
	}
	for _, path := range []string{files.CAFile, files.CertFile, files.KeyFile} {
		require.NoError(t, os.WriteFile(path, []byte("-----BEGIN TEST-----\n"), 0o600))
	}
	return files
}

// clusterFile returns minimalFile with a three-server cluster section that
// passes Validate without a join list.
func clusterFile(t *testing.T) string {
	t.Helper()
	files := clusterTLSFiles(t)
	return minimalFile + fmt.Sprintf(`cluster:
  bootstrap_expect: 3
  tls:
    ca_file: %s
    cert_file: %s
    key_file: %s
`, files.CAFile, files.CertFile, files.KeyFile)
}

func TestLoadClusterJoinList(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   string
		flags []string
		want  []string
	}{
		{"YAML list in file", "  join:\n    - a:1\n    - b:2\n", "", nil, []string{"a:1", "b:2"}},
		{"YAML flow list", "  join: [a:1, b:2]\n", "", nil, []string{"a:1", "b:2"}},
		{"comma string in file", "  join: a:1,b:2\n", "", nil, []string{"a:1", "b:2"}},
		{"empty YAML list", "  join: []\n", "", nil, nil},
		{"env comma separated", "", "a:1,b:2", nil, []string{"a:1", "b:2"}},
		{"env with spaces", "", " a:1 , b:2 ", nil, []string{"a:1", "b:2"}},
		{"env beats file", "  join: [c:3]\n", "a:1,b:2", nil, []string{"a:1", "b:2"}},
		{"empty env clears file", "  join: [c:3]\n", "", nil, nil},
		{"flag comma separated", "", "", []string{"--cluster-join", "a:1,b:2"},
			[]string{"a:1", "b:2"}},
		{"flag repeated", "", "", []string{"--cluster-join=a:1", "--cluster-join=b:2"},
			[]string{"a:1", "b:2"}},
		{"flag beats env", "  join: [c:3]\n", "d:4", []string{"--cluster-join", "a:1,b:2"},
			[]string{"a:1", "b:2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			if tt.env != "" || tt.name == "empty env clears file" {
				t.Setenv("BUNDLEX_CLUSTER_JOIN", tt.env)
			}
			cfg, err := Load(LoadOptions{
				ConfigFile: writeFile(t, clusterFile(t)+tt.file),
				Flags:      parseFlags(t, tt.flags...),
			})
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg.Cluster.Join)
		})
	}
}

func TestLoadClusterJoinErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  string
		want string
	}{
		{"empty entry in env", "", "a:1,,b:2",
			`config: cluster.join: invalid value "a:1,,b:2": use comma-separated values ` +
				"without empty entries, or a YAML list"},
		{"number in YAML list", "  join: [8301]\n", "",
			"config: cluster.join: invalid value [8301]: " +
				"use a list of strings; quote each value in YAML"},
		{"mapping in YAML list", "  join:\n    - host: a\n", "",
			"config: cluster.join: invalid value a mapping: use a list of strings, " +
				"one value per entry (FILE line 12)"},
		{"mapping for list", "  join:\n    host: a\n", "",
			"config: cluster.join: invalid value a mapping: use a list of strings (FILE line 12)"},
		{"address without port", "  join: [10.0.0.1]\n", "",
			`config: cluster.join: invalid value "10.0.0.1": ` +
				"use the gossip host:port of a server, such as 10.0.0.1:8301"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			if tt.env != "" {
				t.Setenv("BUNDLEX_CLUSTER_JOIN", tt.env)
			}
			path := writeFile(t, clusterFile(t)+tt.file)
			_, err := Load(LoadOptions{ConfigFile: path})
			require.Error(t, err)
			require.Equal(t, []string{replaceFile(tt.want, path)}, errorLines(err))
		})
	}
}

func TestLoadClusterTLSLayers(t *testing.T) {
	clearEnv(t)
	files := clusterTLSFiles(t)
	other := clusterTLSFiles(t)
	t.Setenv("BUNDLEX_CLUSTER_TLS_CERT_FILE", other.CertFile)
	cfg, err := Load(LoadOptions{
		ConfigFile: writeFile(t, minimalFile+fmt.Sprintf(
			"cluster:\n  tls:\n    ca_file: %s\n    cert_file: %s\n    key_file: %s\n",
			files.CAFile, files.CertFile, files.KeyFile)),
		Flags: parseFlags(t, "--cluster-tls-key-file="+other.KeyFile,
			"--cluster-bootstrap-expect=0", "--cluster-join=10.0.0.1:8301"),
	})
	require.NoError(t, err)
	require.Equal(t, files.CAFile, cfg.Cluster.TLS.CAFile)
	require.Equal(t, other.CertFile, cfg.Cluster.TLS.CertFile)
	require.Equal(t, other.KeyFile, cfg.Cluster.TLS.KeyFile)
	require.Equal(t, 0, cfg.Cluster.BootstrapExpect)
	require.Equal(t, []string{"10.0.0.1:8301"}, cfg.Cluster.Join)
}

func TestLoadRenamedRaftKeys(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string
	}{
		{"raft bind address", "raft:\n  bind_address: 0.0.0.0:8300\n",
			`config: unknown key "raft.bind_address" in FILE line 6: ` +
				`did you mean "cluster.raft_address"? This key was renamed`},
		{"raft advertise address", "raft:\n  advertise_address: 10.0.0.1:8300\n",
			`config: unknown key "raft.advertise_address" in FILE line 6: ` +
				`did you mean "cluster.raft_advertise_address"? This key was renamed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			path := writeFile(t, minimalFile+tt.file)
			_, err := Load(LoadOptions{ConfigFile: path})
			require.Error(t, err)
			require.Equal(t, []string{replaceFile(tt.want, path)}, errorLines(err))
		})
	}
}

func TestLoadRenamedRaftEnv(t *testing.T) {
	clearEnv(t)
	t.Setenv("BUNDLEX_RAFT_BIND_ADDRESS", "0.0.0.0:8300")
	t.Setenv("BUNDLEX_RAFT_ADVERTISE_ADDRESS", "")
	_, err := Load(LoadOptions{ConfigFile: writeFile(t, minimalFile)})
	require.Equal(t, []string{
		"config: environment variable BUNDLEX_RAFT_ADVERTISE_ADDRESS is no longer read: " +
			"raft.advertise_address was renamed to cluster.raft_advertise_address, " +
			"so set BUNDLEX_CLUSTER_RAFT_ADVERTISE_ADDRESS instead",
		"config: environment variable BUNDLEX_RAFT_BIND_ADDRESS is no longer read: " +
			"raft.bind_address was renamed to cluster.raft_address, " +
			"so set BUNDLEX_CLUSTER_RAFT_ADDRESS instead",
	}, errorLines(err))
}

func TestRenamedRaftFlagsUnknown(t *testing.T) {
	fs := parseFlags(t)
	require.Nil(t, fs.Lookup("raft-bind-address"))
	require.Nil(t, fs.Lookup("raft-advertise-address"))
	require.EqualError(t, fs.Parse([]string{"--raft-bind-address=0.0.0.0:8300"}),
		"unknown flag: --raft-bind-address")
}

func TestAddFlagsClusterDefaults(t *testing.T) {
	fs := parseFlags(t)
	require.Equal(t, "[]", fs.Lookup("cluster-join").DefValue)
	require.Equal(t, "1", fs.Lookup("cluster-bootstrap-expect").DefValue)
	require.Equal(t, "127.0.0.1:8301", fs.Lookup("cluster-gossip-address").DefValue)
}

// gossipKeyOfLength returns the base64 of n random bytes.
func gossipKeyOfLength(t *testing.T, n int) string {
	t.Helper()
	key := make([]byte, n)
	_, err := rand.Read(key)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(key)
}

func TestGossipKeyLengths(t *testing.T) {
	for _, n := range []int{0, 1, 8, 15, 16, 17, 20, 24, 31, 32, 33, 64} {
		t.Run(fmt.Sprintf("key of %d bytes", n), func(t *testing.T) {
			text := gossipKeyOfLength(t, n)
			cfg := validConfig()
			cfg.Cluster.GossipKey = text
			err := cfg.Validate()
			if n == 0 {
				// An empty key disables encryption and is valid.
				require.NoError(t, err)
				require.Nil(t, cfg.Cluster.GossipKeyBytes())
				return
			}
			if n == 16 || n == 24 || n == 32 {
				require.NoError(t, err)
				want, decodeErr := base64.StdEncoding.DecodeString(text)
				require.NoError(t, decodeErr)
				require.Equal(t, want, cfg.Cluster.GossipKeyBytes())
				return
			}
			require.Equal(t, []string{fmt.Sprintf("config: cluster.gossip_key: invalid value "+
				"(secret, not shown): decodes to %d bytes; use the base64 encoding of 16, 24 "+
				`or 32 random bytes, such as the output of "openssl rand -base64 32"`, n)},
				errorLines(err))
			require.NotContains(t, err.Error(), text)
			require.Nil(t, cfg.Cluster.GossipKeyBytes())
		})
	}
}

func TestGossipKeyNeverPrinted(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  string
		want string
	}{
		{"not base64 in env", "", "c2VjcmV0LWtleS12YWx1ZQ!!",
			"config: cluster.gossip_key: invalid value (secret, not shown): not valid base64; " +
				"use the base64 encoding of 16, 24 or 32 random bytes, " +
				`such as the output of "openssl rand -base64 32"`},
		{"number in file", "cluster:\n  gossip_key: 1234567890123\n", "",
			"config: cluster.gossip_key: invalid value (secret, not shown): " +
				"use a string; quote it in YAML"},
		{"list in file", "cluster:\n  gossip_key: [s3cr3t-value]\n", "",
			"config: cluster.gossip_key: invalid value (secret, not shown): " +
				"use a single value, not a list or mapping (FILE line 6)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			if tt.env != "" {
				t.Setenv("BUNDLEX_CLUSTER_GOSSIP_KEY", tt.env)
			}
			path := writeFile(t, minimalFile+tt.file)
			_, err := Load(LoadOptions{ConfigFile: path})
			require.Error(t, err)
			require.Equal(t, []string{replaceFile(tt.want, path)}, errorLines(err))
			require.NotContains(t, err.Error(), "c2VjcmV0")
			require.NotContains(t, err.Error(), "1234567890123")
			require.NotContains(t, err.Error(), "s3cr3t")
		})
	}
}

func TestLoadGossipKeyTrimmed(t *testing.T) {
	clearEnv(t)
	text := gossipKeyOfLength(t, 32)
	t.Setenv("BUNDLEX_CLUSTER_GOSSIP_KEY", " "+text+"\n")
	cfg, err := Load(LoadOptions{ConfigFile: writeFile(t, minimalFile)})
	require.NoError(t, err)
	require.Len(t, cfg.Cluster.GossipKeyBytes(), 32)
}

func TestEffectiveMinQuorum(t *testing.T) {
	tests := []struct {
		name            string
		minQuorum       int
		bootstrapExpect int
		want            int
	}{
		{"single node derived", 0, 1, 1},
		{"three servers derived", 0, 3, 3},
		{"five servers derived", 0, 5, 5},
		{"joining node derived", 0, 0, 3},
		{"explicit value wins", 4, 5, 4},
		{"explicit on joining node", 5, 0, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cluster := ClusterConfig{MinQuorum: tt.minQuorum, BootstrapExpect: tt.bootstrapExpect}
			require.Equal(t, tt.want, cluster.EffectiveMinQuorum())
		})
	}
}
