package config

import (
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// EnvPrefix starts the name of every environment variable this package reads.
const EnvPrefix = "BUNDLEX_"

// trustDomainsKey is the map of static relationships. It is read outside viper
// because its keys are trust domain names, which contain the dots viper splits on.
const trustDomainsKey = "federation.trust_domains"

// setting is one key with a single value or a list. field returns a pointer
// into a Config: *string, *[]string, *[]uint32, *int, *uint64, *time.Duration
// or *ByteSize, which selects the decoder.
type setting struct {
	key   string
	usage string
	field func(c *Config) any
}

// renamedKeys maps keys that earlier versions read to their current names, so
// that an old file or environment fails with a pointer to the new key.
var renamedKeys = map[string]string{
	"raft.bind_address":      "cluster.raft_address",
	"raft.advertise_address": "cluster.raft_advertise_address",
}

// settings lists every key except federation.trust_domains in the order of docs/configuration.md.
var settings = []setting{
	{"trust_domain", "local trust domain name, such as example.org",
		func(c *Config) any { return &c.TrustDomain }},
	{"node_name", "name of this node in the cluster (default: host name)",
		func(c *Config) any { return &c.NodeName }},
	{"data_dir", "directory for the Raft log, snapshots and keys",
		func(c *Config) any { return &c.DataDir }},
	{"log_level", "debug, info, warn or error",
		func(c *Config) any { return &c.LogLevel }},
	{"log_format", "text or json",
		func(c *Config) any { return &c.LogFormat }},
	{"admin.socket_path", "Unix socket of the admin API (default: <data_dir>/admin.sock)",
		func(c *Config) any { return &c.Admin.SocketPath }},
	{"bundle_endpoint.address", "host:port the bundle endpoint listens on",
		func(c *Config) any { return &c.BundleEndpoint.Address }},
	{"bundle_endpoint.path", "URL path that serves the bundle",
		func(c *Config) any { return &c.BundleEndpoint.Path }},
	{"bundle_endpoint.profile", "https_spiffe or https_web",
		func(c *Config) any { return &c.BundleEndpoint.Profile }},
	{"bundle_endpoint.spiffe_id", "endpoint SPIFFE ID (default: spiffe://<trust_domain>/bundlex)",
		func(c *Config) any { return &c.BundleEndpoint.SPIFFEID }},
	{"bundle_endpoint.refresh_hint", "spiffe_refresh_hint published in the bundle, whole seconds",
		func(c *Config) any { return &c.BundleEndpoint.RefreshHint }},
	{"bundle_endpoint.cert_file", "PEM certificate chain for https_web",
		func(c *Config) any { return &c.BundleEndpoint.CertFile }},
	{"bundle_endpoint.key_file", "PEM private key for https_web",
		func(c *Config) any { return &c.BundleEndpoint.KeyFile }},
	{"bundle_endpoint.cert_reload_interval", "how often cert_file and key_file are checked for changes",
		func(c *Config) any { return &c.BundleEndpoint.CertReloadInterval }},
	{"bundle_endpoint.read_timeout", "time limit for reading one whole request, body included",
		func(c *Config) any { return &c.BundleEndpoint.ReadTimeout }},
	{"bundle_endpoint.max_connections", "connections the bundle endpoint keeps open at once",
		func(c *Config) any { return &c.BundleEndpoint.MaxConnections }},
	{"authority.type", "builtin or file",
		func(c *Config) any { return &c.Authority.Type }},
	{"authority.ca_ttl", "lifetime of a built-in CA certificate",
		func(c *Config) any { return &c.Authority.CATTL }},
	{"authority.jwt_key_ttl", "lifetime of a built-in JWT signing key",
		func(c *Config) any { return &c.Authority.JWTKeyTTL }},
	{"authority.x509_svid_max_ttl", "maximum lifetime of an X509-SVID the CA signs",
		func(c *Config) any { return &c.Authority.X509SVIDMaxTTL }},
	{"authority.jwt_svid_max_ttl", "maximum lifetime of a JWT-SVID the keys sign",
		func(c *Config) any { return &c.Authority.JWTSVIDMaxTTL }},
	{"authority.publish_lead", "time a new key is published before use (0: 4 refresh hints)",
		func(c *Config) any { return &c.Authority.PublishLead }},
	{"authority.mint_allowed_id_prefixes", "SPIFFE ID prefixes minting is allowed for (default: any ID of the trust domain)",
		func(c *Config) any { return &c.Authority.MintAllowedIDPrefixes }},
	{"authority.bundle_path", "bundle file published by the file authority",
		func(c *Config) any { return &c.Authority.BundlePath }},
	{"authority.bundle_format", "format of authority.bundle_path: spiffe or pem",
		func(c *Config) any { return &c.Authority.BundleFormat }},
	{"authority.endpoint_cert_file", "X509-SVID of the endpoint for https_spiffe in file mode",
		func(c *Config) any { return &c.Authority.EndpointCertFile }},
	{"authority.endpoint_key_file", "private key of authority.endpoint_cert_file",
		func(c *Config) any { return &c.Authority.EndpointKeyFile }},
	{"authority.bundle_poll_interval", "how often the file authority checks bundle_path",
		func(c *Config) any { return &c.Authority.BundlePollInterval }},
	{"federation.min_refresh", "shortest interval between fetches of one peer",
		func(c *Config) any { return &c.Federation.MinRefresh }},
	{"federation.max_refresh", "longest interval between fetches of one peer",
		func(c *Config) any { return &c.Federation.MaxRefresh }},
	{"federation.default_refresh", "fetch interval for a bundle without a refresh hint",
		func(c *Config) any { return &c.Federation.DefaultRefresh }},
	{"federation.fetch_timeout", "time limit of one fetch, redirects included",
		func(c *Config) any { return &c.Federation.FetchTimeout }},
	{"federation.max_bundle_size", "largest bundle document accepted, such as 1MiB",
		func(c *Config) any { return &c.Federation.MaxBundleSize }},
	{"federation.max_redirects", "redirects followed in one fetch (0: none)",
		func(c *Config) any { return &c.Federation.MaxRedirects }},
	{"federation.retry_backoff_max", "longest wait before retrying a failed fetch",
		func(c *Config) any { return &c.Federation.RetryBackoffMax }},
	{"workload_api.socket_path", "Unix socket of the SPIFFE Workload API (empty: disabled)",
		func(c *Config) any { return &c.Consumers.WorkloadAPISocket }},
	{"workload_api.svid_path_template",
		"SPIFFE ID path of SVIDs issued to local callers, such as /workload/uid/{uid} " +
			"(empty: no SVIDs)",
		func(c *Config) any { return &c.Consumers.WorkloadSVIDPathTemplate }},
	{"workload_api.svid_ttl", "lifetime of the SVIDs the Workload API issues",
		func(c *Config) any { return &c.Consumers.WorkloadSVIDTTL }},
	{"workload_api.svid_allowed_uids",
		"Unix user IDs that may receive SVIDs, comma-separated (empty: any caller)",
		func(c *Config) any { return &c.Consumers.WorkloadSVIDAllowedUIDs }},
	{"output.directory", "directory for PEM files and the bundle map (empty: disabled)",
		func(c *Config) any { return &c.Consumers.OutputDirectory }},
	{"verify.address", "host:port of the HTTPS verify API (empty: disabled)",
		func(c *Config) any { return &c.Consumers.VerifyAddress }},
	{"verify.clock_skew", "tolerance for JWT-SVID exp, nbf and iat times",
		func(c *Config) any { return &c.Consumers.VerifyClockSkew }},
	{"verify.read_timeout", "time limit for reading one whole verify request, body included",
		func(c *Config) any { return &c.Consumers.VerifyReadTimeout }},
	{"verify.max_connections", "connections the verify API keeps open at once",
		func(c *Config) any { return &c.Consumers.VerifyMaxConnections }},
	{"health.address", "host:port for /healthz, /readyz and /metrics (empty: disabled)",
		func(c *Config) any { return &c.Health.Address }},
	{"health.read_timeout", "time limit for reading one whole health request, body included",
		func(c *Config) any { return &c.Health.ReadTimeout }},
	{"health.max_connections", "connections the health listener keeps open at once",
		func(c *Config) any { return &c.Health.MaxConnections }},
	{"cluster.raft_address", "host:port the Raft transport listens on",
		func(c *Config) any { return &c.Cluster.RaftAddress }},
	{"cluster.raft_advertise_address",
		"Raft host:port other nodes dial (default: cluster.raft_address)",
		func(c *Config) any { return &c.Cluster.RaftAdvertiseAddress }},
	{"cluster.gossip_address", "host:port the gossip listener binds, TCP and UDP",
		func(c *Config) any { return &c.Cluster.GossipAddress }},
	{"cluster.gossip_advertise_address",
		"gossip host:port other nodes dial (default: cluster.gossip_address)",
		func(c *Config) any { return &c.Cluster.GossipAdvertiseAddress }},
	{"cluster.join", "gossip host:port of servers to join, comma-separated or repeated",
		func(c *Config) any { return &c.Cluster.Join }},
	{"cluster.retry_join_interval", "wait between two attempts to join, at least 100ms",
		func(c *Config) any { return &c.Cluster.RetryJoinInterval }},
	{"cluster.bootstrap_expect",
		"servers that bootstrap the cluster together (1: alone, 0: only join)",
		func(c *Config) any { return &c.Cluster.BootstrapExpect }},
	{"cluster.gossip_key", "base64 gossip encryption key of 16, 24 or 32 bytes",
		func(c *Config) any { return &c.Cluster.GossipKey }},
	{"cluster.tls.ca_file", "PEM cluster CA certificate for mutual TLS between nodes",
		func(c *Config) any { return &c.Cluster.TLS.CAFile }},
	{"cluster.tls.cert_file", "PEM certificate chain of this node for cluster TLS",
		func(c *Config) any { return &c.Cluster.TLS.CertFile }},
	{"cluster.tls.key_file", "PEM private key of cluster.tls.cert_file",
		func(c *Config) any { return &c.Cluster.TLS.KeyFile }},
	{"cluster.server_stabilization_time", "time a new server stays healthy before it votes",
		func(c *Config) any { return &c.Cluster.ServerStabilizationTime }},
	{"cluster.dead_server_grace", "time an unreachable server stays in the Raft configuration",
		func(c *Config) any { return &c.Cluster.DeadServerGrace }},
	{"cluster.min_quorum", "fewest voters dead-server removal leaves (0: derived)",
		func(c *Config) any { return &c.Cluster.MinQuorum }},
	{"cluster.reconcile_interval", "interval between gossip and Raft membership checks",
		func(c *Config) any { return &c.Cluster.ReconcileInterval }},
	{"raft.snapshot_retain", "Raft snapshots kept on disk",
		func(c *Config) any { return &c.Raft.SnapshotRetain }},
	{"raft.snapshot_threshold", "log entries between Raft snapshots",
		func(c *Config) any { return &c.Raft.SnapshotThreshold }},
	{"raft.apply_timeout", "time limit of one Raft apply",
		func(c *Config) any { return &c.Raft.ApplyTimeout }},
}

// Keys returns every configuration key in dotted form, the static relationship
// map federation.trust_domains last.
func Keys() []string {
	keys := make([]string, 0, len(settings)+1)
	for _, s := range settings {
		keys = append(keys, s.key)
	}
	return append(keys, trustDomainsKey)
}

// EnvName returns the environment variable for a dotted key, such as
// BUNDLEX_BUNDLE_ENDPOINT_ADDRESS for bundle_endpoint.address.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// FlagName returns the command-line flag for a dotted key, such as
// bundle-endpoint-address for bundle_endpoint.address.
func FlagName(key string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(key)
}

// AddFlags defines one flag per key on fs, named by FlagName, so that Load can
// bind the ones the user sets. Defaults shown in the help are those of Default.
func AddFlags(fs *pflag.FlagSet) {
	defaults := Default()
	for _, s := range settings {
		name := FlagName(s.key)
		switch ptr := s.field(defaults).(type) {
		case *string:
			fs.String(name, *ptr, s.usage)
		case *[]string:
			fs.StringSlice(name, *ptr, s.usage)
		case *[]uint32:
			// A string list, which decodeUint32List parses like the environment.
			fs.StringSlice(name, nil, s.usage)
		case *int:
			fs.Int(name, *ptr, s.usage)
		case *uint64:
			fs.Uint64(name, *ptr, s.usage)
		case *time.Duration:
			fs.Duration(name, *ptr, s.usage)
		case *ByteSize:
			fs.String(name, ptr.String(), s.usage)
		}
	}
	fs.String(FlagName(trustDomainsKey), "",
		"static relationships as one JSON object keyed by trust domain name")
}
