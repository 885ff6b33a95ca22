package config

import (
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Accepted values of the enumerated keys.
const (
	// ProfileHTTPSSPIFFE authenticates the bundle endpoint with an X509-SVID
	// (SPIFFE Federation 5.2.2).
	ProfileHTTPSSPIFFE = "https_spiffe"
	// ProfileHTTPSWeb authenticates the bundle endpoint with a Web PKI
	// certificate (SPIFFE Federation 5.2.1).
	ProfileHTTPSWeb = "https_web"

	// AuthorityBuiltin makes the node generate and rotate its own CA and JWT keys.
	AuthorityBuiltin = "builtin"
	// AuthorityFile makes the node publish a bundle read from a file.
	AuthorityFile = "file"

	// BundleFormatSPIFFE is the SPIFFE bundle format, a JWK Set.
	BundleFormatSPIFFE = "spiffe"
	// BundleFormatPEM is a list of PEM-encoded X.509 CA certificates.
	BundleFormatPEM = "pem"

	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Defaults that do not depend on other keys. docs/configuration.md repeats them.
const (
	DefaultLogLevel        = "info"
	DefaultLogFormat       = LogFormatText
	DefaultEndpointAddress = "0.0.0.0:8443"
	DefaultEndpointPath    = "/"
	DefaultRefreshHint     = 5 * time.Minute
	// DefaultVerifyClockSkew is the tolerance for JWT-SVID exp, nbf and iat.
	DefaultVerifyClockSkew = 30 * time.Second
	// MaxVerifyClockSkew is the largest accepted verify.clock_skew.
	MaxVerifyClockSkew = 5 * time.Minute
	// DefaultWorkloadSVIDTTL is the lifetime of the SVIDs the Workload API issues.
	DefaultWorkloadSVIDTTL = time.Hour
	// MinWorkloadSVIDTTL is the shortest accepted workload_api.svid_ttl.
	MinWorkloadSVIDTTL = time.Second
	// DefaultReadTimeout bounds reading one whole request, headers and body, on
	// the bundle endpoint and the verify API.
	DefaultReadTimeout = 10 * time.Second
	// MinReadTimeout and MaxReadTimeout bound bundle_endpoint.read_timeout and
	// verify.read_timeout. Below a second a client on a slow link cannot send a
	// request, and far above the default a slow client holds its connection long.
	MinReadTimeout = time.Second
	MaxReadTimeout = 10 * time.Minute
	// DefaultMaxConnections bounds the connections that the bundle endpoint and
	// the verify API each keep open at once, idle keep-alive connections included.
	DefaultMaxConnections = 2048
	// DefaultHealthMaxConnections bounds the connections of the health listener,
	// which serves probes and scrapes.
	DefaultHealthMaxConnections = 256
	// DefaultCertReloadInterval is how often certificate files are checked for changes.
	DefaultCertReloadInterval = 30 * time.Second
	// DefaultBundlePollInterval is how often the file authority checks its bundle file.
	DefaultBundlePollInterval    = 5 * time.Second
	DefaultCATTL                 = 7 * 24 * time.Hour
	DefaultJWTKeyTTL             = 24 * time.Hour
	DefaultX509SVIDMaxTTL        = time.Hour
	DefaultJWTSVIDMaxTTL         = 5 * time.Minute
	DefaultMinRefresh            = 30 * time.Second
	DefaultMaxRefresh            = time.Hour
	DefaultFederationRefresh     = 5 * time.Minute
	DefaultFetchTimeout          = 10 * time.Second
	DefaultMaxBundleSize         = ByteSize(1 << 20)
	DefaultMaxRedirects          = 3
	DefaultRetryBackoffMax       = 5 * time.Minute
	DefaultHealthAddress         = "127.0.0.1:8080"
	DefaultRaftSnapshotRetain    = 2
	DefaultRaftSnapshotThreshold = 8192
	DefaultRaftApplyTimeout      = 10 * time.Second

	// DefaultPublishLeadHints is how many refresh hints ahead of first use a new
	// key is published when authority.publish_lead is 0. SPIFFE Federation 4.1
	// recommends 3 to 5 refresh hints.
	DefaultPublishLeadHints = 4
	// MinPublishLeadHints is the lower end of that range.
	MinPublishLeadHints = 3
)

// Config is the whole configuration of one bundlex node.
type Config struct {
	// TrustDomain is the local trust domain name, such as example.org.
	TrustDomain string
	// NodeName identifies this node in the Raft cluster. It defaults to the host name.
	NodeName string
	// DataDir contains the Raft log, snapshots and the authority's keys.
	DataDir   string
	LogLevel  string
	LogFormat string

	Admin          AdminConfig
	BundleEndpoint BundleEndpointConfig
	Authority      AuthorityConfig
	Federation     FederationConfig
	Health         HealthConfig
	Consumers      ConsumerConfig
	Cluster        ClusterConfig
	Raft           RaftConfig
}

// AdminConfig is the admin API listener.
type AdminConfig struct {
	// SocketPath is the Unix socket path, by default <data_dir>/admin.sock.
	SocketPath string
}

// BundleEndpointConfig is the server that publishes the local trust domain's bundle.
type BundleEndpointConfig struct {
	Address string
	Path    string
	Profile string
	// SPIFFEID is the ID in the endpoint's X509-SVID under https_spiffe, by
	// default spiffe://<trust_domain>/bundlex.
	SPIFFEID string
	// RefreshHint is published as spiffe_refresh_hint, in whole seconds.
	RefreshHint time.Duration
	// CertFile and KeyFile are the Web PKI certificate chain and key for https_web.
	CertFile string
	KeyFile  string
	// CertReloadInterval is how often the certificate files are checked for changes.
	CertReloadInterval time.Duration
	// ReadTimeout bounds reading one whole request, headers and body.
	ReadTimeout time.Duration
	// MaxConnections bounds the connections open at once. Further connections
	// wait in the kernel's accept queue until one closes.
	MaxConnections int
}

// AuthorityConfig selects where the local trust domain's keys come from.
type AuthorityConfig struct {
	Type string

	// Builtin authority.
	CATTL          time.Duration
	JWTKeyTTL      time.Duration
	X509SVIDMaxTTL time.Duration
	JWTSVIDMaxTTL  time.Duration
	// PublishLead is how long before first use a new key is published. Zero
	// means DefaultPublishLeadHints times the refresh hint; see
	// [Config.EffectivePublishLead].
	PublishLead time.Duration

	// MintAllowedIDPrefixes limits the SPIFFE IDs the built-in authority mints
	// SVIDs for. Empty allows every ID of the local trust domain.
	MintAllowedIDPrefixes []string

	// File authority.
	BundlePath   string
	BundleFormat string
	// EndpointCertFile and EndpointKeyFile are the endpoint's X509-SVID and key,
	// needed under https_spiffe because no built-in CA can sign one.
	EndpointCertFile string
	EndpointKeyFile  string
	// BundlePollInterval is how often the file authority checks BundlePath.
	BundlePollInterval time.Duration
}

// FederationConfig controls fetching the bundles of other trust domains.
type FederationConfig struct {
	// MinRefresh and MaxRefresh clamp the refresh hint a peer publishes.
	MinRefresh time.Duration
	MaxRefresh time.Duration
	// DefaultRefresh is the interval for a bundle without spiffe_refresh_hint.
	DefaultRefresh  time.Duration
	FetchTimeout    time.Duration
	MaxBundleSize   ByteSize
	MaxRedirects    int
	RetryBackoffMax time.Duration
	// TrustDomains contains the static relationships, keyed by trust domain name.
	TrustDomains map[string]Relationship
}

// Relationship is one static federation relationship from the configuration file.
type Relationship struct {
	BundleEndpointURL string
	Profile           string
	// EndpointSPIFFEID is the ID the endpoint must present under https_spiffe.
	EndpointSPIFFEID string
	// BundlePath is a bootstrap bundle of the peer trust domain, required when
	// the endpoint's ID is in that trust domain (SPIFFE Federation 5.2.2.2).
	BundlePath   string
	BundleFormat string
	// CAFile contains PEM roots for https_web. Empty means the system roots.
	CAFile string
	// AllowedIDPrefixes are the SPIFFE ID prefixes that the peer's credentials
	// must fall under, written as a YAML list or one comma-separated string.
	// Empty allows the whole trust domain.
	AllowedIDPrefixes []string
}

// HealthConfig is the HTTP listener for /healthz, /readyz and /metrics.
type HealthConfig struct {
	// Address is host:port. Empty disables the listener.
	Address string
	// ReadTimeout bounds reading one whole request, headers and body.
	ReadTimeout time.Duration
	// MaxConnections bounds the connections open at once.
	MaxConnections int
}

// ConsumerConfig is the set of listeners that give consumers bundles and verification.
type ConsumerConfig struct {
	// WorkloadAPISocket is the Unix socket of the SPIFFE Workload API. Empty
	// disables it.
	WorkloadAPISocket string
	// WorkloadSVIDPathTemplate is the SPIFFE ID path of the SVIDs the Workload
	// API issues to local callers, with the placeholders {uid} and {gid} (see
	// IDPathTemplate). Empty means the Workload API issues no SVIDs.
	WorkloadSVIDPathTemplate string
	// WorkloadSVIDTTL is the lifetime of those SVIDs. JWT-SVIDs get at most
	// Authority.JWTSVIDMaxTTL.
	WorkloadSVIDTTL time.Duration
	// WorkloadSVIDAllowedUIDs are the Unix user IDs that may receive SVIDs.
	// Empty allows every caller that can open the socket.
	WorkloadSVIDAllowedUIDs []uint32
	// OutputDirectory receives one PEM file per trust domain and a SPIFFE bundle
	// map. Empty disables the file output.
	OutputDirectory string
	// VerifyAddress is the host:port of the HTTPS verify API. Empty disables it.
	VerifyAddress string
	// VerifyClockSkew is how far JWT-SVID times may be off from this node's clock.
	VerifyClockSkew time.Duration
	// VerifyReadTimeout and VerifyMaxConnections are the verify API's limits, as
	// BundleEndpointConfig.ReadTimeout and MaxConnections are the bundle endpoint's.
	VerifyReadTimeout    time.Duration
	VerifyMaxConnections int
}

// RaftConfig is the replicated store's snapshot and apply settings. Its
// addresses are in ClusterConfig.
type RaftConfig struct {
	SnapshotRetain    int
	SnapshotThreshold uint64
	ApplyTimeout      time.Duration
}

// Default returns the configuration with every default that does not depend on
// another key. TrustDomain and DataDir are empty because they have no default.
func Default() *Config {
	hostname, err := os.Hostname()
	if err != nil {
		// Validate then reports the empty node_name, which the operator must set.
		hostname = ""
	}
	return &Config{
		NodeName:  hostname,
		LogLevel:  DefaultLogLevel,
		LogFormat: DefaultLogFormat,
		BundleEndpoint: BundleEndpointConfig{
			Address:     DefaultEndpointAddress,
			Path:        DefaultEndpointPath,
			Profile:     ProfileHTTPSSPIFFE,
			RefreshHint: DefaultRefreshHint,

			CertReloadInterval: DefaultCertReloadInterval,
			ReadTimeout:        DefaultReadTimeout,
			MaxConnections:     DefaultMaxConnections,
		},
		Authority: AuthorityConfig{
			Type:           AuthorityBuiltin,
			CATTL:          DefaultCATTL,
			JWTKeyTTL:      DefaultJWTKeyTTL,
			X509SVIDMaxTTL: DefaultX509SVIDMaxTTL,
			JWTSVIDMaxTTL:  DefaultJWTSVIDMaxTTL,
			BundleFormat:   BundleFormatSPIFFE,

			BundlePollInterval: DefaultBundlePollInterval,
		},
		Federation: FederationConfig{
			MinRefresh:      DefaultMinRefresh,
			MaxRefresh:      DefaultMaxRefresh,
			DefaultRefresh:  DefaultFederationRefresh,
			FetchTimeout:    DefaultFetchTimeout,
			MaxBundleSize:   DefaultMaxBundleSize,
			MaxRedirects:    DefaultMaxRedirects,
			RetryBackoffMax: DefaultRetryBackoffMax,
			TrustDomains:    map[string]Relationship{},
		},
		Health: HealthConfig{Address: DefaultHealthAddress, ReadTimeout: DefaultReadTimeout,
			MaxConnections: DefaultHealthMaxConnections},
		Consumers: ConsumerConfig{
			VerifyClockSkew:      DefaultVerifyClockSkew,
			VerifyReadTimeout:    DefaultReadTimeout,
			VerifyMaxConnections: DefaultMaxConnections,
			WorkloadSVIDTTL:      DefaultWorkloadSVIDTTL,
		},
		Cluster: defaultCluster(),
		Raft: RaftConfig{
			SnapshotRetain:    DefaultRaftSnapshotRetain,
			SnapshotThreshold: DefaultRaftSnapshotThreshold,
			ApplyTimeout:      DefaultRaftApplyTimeout,
		},
	}
}

// FillDerived sets the defaults that depend on other keys, leaving every
// non-empty value alone: admin.socket_path from data_dir,
// bundle_endpoint.spiffe_id from trust_domain and the bundle format of each
// relationship. It also removes repeated ID prefixes, as the node does for the
// prefixes of a relationship.
func (c *Config) FillDerived() {
	c.Authority.MintAllowedIDPrefixes = withoutDuplicates(c.Authority.MintAllowedIDPrefixes)
	if c.Admin.SocketPath == "" && c.DataDir != "" {
		c.Admin.SocketPath = filepath.Join(c.DataDir, "admin.sock")
	}
	if c.BundleEndpoint.SPIFFEID == "" && c.TrustDomain != "" {
		c.BundleEndpoint.SPIFFEID = "spiffe://" + c.TrustDomain + "/bundlex"
	}
	if c.Authority.BundleFormat == "" {
		c.Authority.BundleFormat = BundleFormatSPIFFE
	}
	for name, rel := range c.Federation.TrustDomains {
		if rel.BundleFormat == "" {
			rel.BundleFormat = BundleFormatSPIFFE
			c.Federation.TrustDomains[name] = rel
		}
	}
}

// withoutDuplicates returns values in their order without repeats, nil for none.
func withoutDuplicates(values []string) []string {
	var out []string
	for _, v := range values {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// EffectivePublishLead returns authority.publish_lead, or DefaultPublishLeadHints
// refresh hints when it is 0.
func (c *Config) EffectivePublishLead() time.Duration {
	if c.Authority.PublishLead != 0 {
		return c.Authority.PublishLead
	}
	return DefaultPublishLeadHints * c.BundleEndpoint.RefreshHint
}
