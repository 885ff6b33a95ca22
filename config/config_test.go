package config

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaultValues(t *testing.T) {
	cfg := Default()
	hostname, err := os.Hostname()
	require.NoError(t, err)

	require.Equal(t, "", cfg.TrustDomain)
	require.Equal(t, hostname, cfg.NodeName)
	require.Equal(t, "", cfg.DataDir)
	require.Equal(t, "info", cfg.LogLevel)
	require.Equal(t, "text", cfg.LogFormat)
	require.Equal(t, "", cfg.Admin.SocketPath)
	require.Equal(t, "0.0.0.0:8443", cfg.BundleEndpoint.Address)
	require.Equal(t, "/", cfg.BundleEndpoint.Path)
	require.Equal(t, "https_spiffe", cfg.BundleEndpoint.Profile)
	require.Equal(t, 5*time.Minute, cfg.BundleEndpoint.RefreshHint)
	require.Equal(t, "builtin", cfg.Authority.Type)
	require.Equal(t, 168*time.Hour, cfg.Authority.CATTL)
	require.Equal(t, 24*time.Hour, cfg.Authority.JWTKeyTTL)
	require.Equal(t, time.Hour, cfg.Authority.X509SVIDMaxTTL)
	require.Equal(t, 5*time.Minute, cfg.Authority.JWTSVIDMaxTTL)
	require.Equal(t, time.Duration(0), cfg.Authority.PublishLead)
	require.Equal(t, "spiffe", cfg.Authority.BundleFormat)
	require.Equal(t, 30*time.Second, cfg.Federation.MinRefresh)
	require.Equal(t, time.Hour, cfg.Federation.MaxRefresh)
	require.Equal(t, 5*time.Minute, cfg.Federation.DefaultRefresh)
	require.Equal(t, 10*time.Second, cfg.Federation.FetchTimeout)
	require.Equal(t, ByteSize(1048576), cfg.Federation.MaxBundleSize)
	require.Equal(t, 3, cfg.Federation.MaxRedirects)
	require.Equal(t, 5*time.Minute, cfg.Federation.RetryBackoffMax)
	require.Empty(t, cfg.Federation.TrustDomains)
	require.Equal(t, "127.0.0.1:8080", cfg.Health.Address)
	require.Equal(t, "", cfg.Consumers.WorkloadSVIDPathTemplate)
	require.Equal(t, time.Hour, cfg.Consumers.WorkloadSVIDTTL)
	require.Empty(t, cfg.Consumers.WorkloadSVIDAllowedUIDs)
	require.Equal(t, "127.0.0.1:8300", cfg.Cluster.RaftAddress)
	require.Equal(t, "", cfg.Cluster.RaftAdvertiseAddress)
	require.Equal(t, "127.0.0.1:8301", cfg.Cluster.GossipAddress)
	require.Equal(t, "", cfg.Cluster.GossipAdvertiseAddress)
	require.Empty(t, cfg.Cluster.Join)
	require.Equal(t, 5*time.Second, cfg.Cluster.RetryJoinInterval)
	require.Equal(t, 1, cfg.Cluster.BootstrapExpect)
	require.Equal(t, "", cfg.Cluster.GossipKey)
	require.Equal(t, ClusterTLSConfig{}, cfg.Cluster.TLS)
	require.Equal(t, 10*time.Second, cfg.Cluster.ServerStabilizationTime)
	require.Equal(t, 30*time.Second, cfg.Cluster.DeadServerGrace)
	require.Equal(t, 0, cfg.Cluster.MinQuorum)
	require.Equal(t, 2*time.Second, cfg.Cluster.ReconcileInterval)
	require.Equal(t, 2, cfg.Raft.SnapshotRetain)
	require.Equal(t, uint64(8192), cfg.Raft.SnapshotThreshold)
	require.Equal(t, 10*time.Second, cfg.Raft.ApplyTimeout)
}

func TestFillDerivedDefaults(t *testing.T) {
	cfg := Default()
	cfg.TrustDomain = "example.org"
	cfg.DataDir = "/data"
	cfg.Federation.TrustDomains["org-b.test"] = Relationship{Profile: ProfileHTTPSWeb}
	cfg.FillDerived()

	require.Equal(t, filepath.Join("/data", "admin.sock"), cfg.Admin.SocketPath)
	require.Equal(t, "spiffe://example.org/bundlex", cfg.BundleEndpoint.SPIFFEID)
	require.Equal(t, "spiffe", cfg.Federation.TrustDomains["org-b.test"].BundleFormat)
	require.Equal(t, "127.0.0.1:8300", cfg.RaftAdvertiseAddress())
	require.Equal(t, "127.0.0.1:8301", cfg.GossipAdvertiseAddress())

	cfg.Admin.SocketPath = "/run/bundlex.sock"
	cfg.BundleEndpoint.SPIFFEID = "spiffe://example.org/endpoint"
	cfg.Cluster.RaftAdvertiseAddress = "192.0.2.10:8300"
	cfg.Cluster.GossipAdvertiseAddress = "192.0.2.10:8301"
	cfg.FillDerived()
	require.Equal(t, "/run/bundlex.sock", cfg.Admin.SocketPath)
	require.Equal(t, "spiffe://example.org/endpoint", cfg.BundleEndpoint.SPIFFEID)
	require.Equal(t, "192.0.2.10:8300", cfg.RaftAdvertiseAddress())
	require.Equal(t, "192.0.2.10:8301", cfg.GossipAdvertiseAddress())
}

func TestEffectivePublishLead(t *testing.T) {
	cfg := validConfig()
	require.Equal(t, 20*time.Minute, cfg.EffectivePublishLead())

	cfg.BundleEndpoint.RefreshHint = time.Minute
	require.Equal(t, 4*time.Minute, cfg.EffectivePublishLead())

	cfg.Authority.PublishLead = time.Hour
	require.Equal(t, time.Hour, cfg.EffectivePublishLead())
}

func TestKeyNameForms(t *testing.T) {
	tests := []struct {
		key, env, flag string
	}{
		{"trust_domain", "BUNDLEX_TRUST_DOMAIN", "trust-domain"},
		{"bundle_endpoint.address", "BUNDLEX_BUNDLE_ENDPOINT_ADDRESS", "bundle-endpoint-address"},
		{"authority.x509_svid_max_ttl", "BUNDLEX_AUTHORITY_X509_SVID_MAX_TTL",
			"authority-x509-svid-max-ttl"},
		{"federation.trust_domains", "BUNDLEX_FEDERATION_TRUST_DOMAINS",
			"federation-trust-domains"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			require.Equal(t, tt.env, EnvName(tt.key))
			require.Equal(t, tt.flag, FlagName(tt.key))
		})
	}
}

func TestAddFlagsDefinesEveryKey(t *testing.T) {
	fs := parseFlags(t)
	for _, key := range Keys() {
		flag := fs.Lookup(FlagName(key))
		require.NotNil(t, flag, "no flag for %s", key)
		require.NotEmpty(t, flag.Usage, "no usage for %s", key)
	}
	require.Equal(t, "1MiB", fs.Lookup("federation-max-bundle-size").DefValue)
	require.Equal(t, "5m0s", fs.Lookup("bundle-endpoint-refresh-hint").DefValue)
}

func TestDevConfig(t *testing.T) {
	cfg, err := Dev("")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, os.RemoveAll(cfg.DataDir)) })

	require.NoError(t, cfg.Validate())
	require.Equal(t, DevTrustDomain, cfg.TrustDomain)
	require.DirExists(t, cfg.DataDir)
	require.Equal(t, filepath.Join(cfg.DataDir, "admin.sock"), cfg.Admin.SocketPath)
	require.Equal(t, "127.0.0.1:8443", cfg.BundleEndpoint.Address)
	require.Equal(t, "spiffe://bundlex.test/bundlex", cfg.BundleEndpoint.SPIFFEID)
	require.Equal(t, AuthorityBuiltin, cfg.Authority.Type)
	require.Equal(t, "127.0.0.1:8080", cfg.Health.Address)
	require.True(t, strings.HasPrefix(cfg.Cluster.RaftAddress, "127.0.0.1:"))
	require.NotEqual(t, "127.0.0.1:0", cfg.Cluster.RaftAddress)
	require.True(t, strings.HasPrefix(cfg.Cluster.GossipAddress, "127.0.0.1:"))
	require.NotEqual(t, "127.0.0.1:0", cfg.Cluster.GossipAddress)
	require.NotEqual(t, cfg.Cluster.RaftAddress, cfg.Cluster.GossipAddress)
	require.Equal(t, 1, cfg.Cluster.BootstrapExpect)
	require.Empty(t, cfg.Cluster.Join)
	// Gossip binds TCP and UDP, so the port must be free on both.
	conn, err := net.ListenPacket("udp", cfg.Cluster.GossipAddress)
	require.NoError(t, err)
	require.NoError(t, conn.Close())
}

func TestDevConfigTrustDomain(t *testing.T) {
	cfg, err := Dev("dev.example.org")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, os.RemoveAll(cfg.DataDir)) })
	require.Equal(t, "dev.example.org", cfg.TrustDomain)
	require.Equal(t, "spiffe://dev.example.org/bundlex", cfg.BundleEndpoint.SPIFFEID)

	_, err = Dev("Bad.Example")
	require.EqualError(t, err, `config: trust_domain: invalid value "Bad.Example": `+
		"trust domain characters are limited to lowercase letters, numbers, dots, dashes, "+
		"and underscores; use a name such as example.org")
}

func TestByteSizeParseAndFormat(t *testing.T) {
	tests := []struct {
		name, text string
		want       ByteSize
		wantErr    bool
	}{
		{"plain bytes", "2048", 2048, false},
		{"byte unit", "10B", 10, false},
		{"binary kibibytes", "512KiB", 512 << 10, false},
		{"binary mebibytes", "2MiB", 2 << 20, false},
		{"binary gibibytes", "1GiB", 1 << 30, false},
		{"decimal megabytes with space", "1 MB", 1000000, false},
		{"decimal kilobytes", "3KB", 3000, false},
		{"fraction rejected", "1.5MiB", 0, true},
		{"negative rejected", "-1", 0, true},
		{"unknown unit rejected", "1TB", 0, true},
		{"overflow rejected", "9000000000GiB", 0, true},
		{"empty rejected", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseByteSize(tt.text)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	require.Equal(t, "1MiB", ByteSize(1<<20).String())
	require.Equal(t, "3KiB", ByteSize(3072).String())
	require.Equal(t, "1000B", ByteSize(1000).String())
	require.Equal(t, "0B", ByteSize(0).String())
}

func TestConsumerSettingsValidation(t *testing.T) {
	cfg := Default()
	cfg.TrustDomain = "example.org"
	cfg.DataDir = t.TempDir()
	cfg.FillDerived()
	cfg.Consumers.VerifyAddress = "nohost"
	cfg.Consumers.WorkloadAPISocket = "/" + strings.Repeat("s", MaxSocketPathLength)
	cfg.Authority.MintAllowedIDPrefixes = []string{"spiffe://example.org/agents/",
		"spiffe://other.org/agents/"}
	err := cfg.Validate()
	require.ErrorContains(t, err, "verify.address")
	require.ErrorContains(t, err, "workload_api.socket_path")
	require.ErrorContains(t, err, `authority.mint_allowed_id_prefixes: invalid value "spiffe://other.org/agents/"`)
	require.NotContains(t, err.Error(), `"spiffe://example.org/agents/"`)
}
