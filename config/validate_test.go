package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestValidateAcceptsValidConfigs(t *testing.T) {
	bundlePath, caPath := writeBundleFile(t), writeCAFile(t)
	tests := []struct {
		name   string
		modify func(c *Config)
	}{
		{"defaults with required keys", func(c *Config) {}},
		{"health listener disabled", func(c *Config) { c.Health.Address = "" }},
		{"web profile with files", func(c *Config) {
			c.BundleEndpoint.Profile = ProfileHTTPSWeb
			c.BundleEndpoint.CertFile = "/etc/bundlex/tls.crt"
			c.BundleEndpoint.KeyFile = "/etc/bundlex/tls.key"
		}},
		{"file authority with svid", func(c *Config) {
			c.Authority.Type = AuthorityFile
			c.Authority.BundlePath = "/etc/bundlex/bundle.json"
			c.Authority.EndpointCertFile = "/etc/bundlex/svid.pem"
			c.Authority.EndpointKeyFile = "/etc/bundlex/svid.key"
		}},
		{"wildcard bind with advertise", func(c *Config) {
			c.Cluster.RaftAddress = "0.0.0.0:8300"
			c.Cluster.RaftAdvertiseAddress = "192.0.2.10:8300"
			c.Cluster.GossipAddress = "0.0.0.0:8301"
			c.Cluster.GossipAdvertiseAddress = "192.0.2.10:8301"
		}},
		{"explicit publish lead", func(c *Config) { c.Authority.PublishLead = 15 * time.Minute }},
		{"trust domain of 255 bytes", func(c *Config) {
			c.TrustDomain = strings.Repeat("a", 255)
			c.BundleEndpoint.SPIFFEID = "spiffe://" + c.TrustDomain + "/bundlex"
		}},
		{"three kinds of relationship", func(c *Config) {
			c.Federation.TrustDomains = map[string]Relationship{
				"org-b.test": {
					BundleEndpointURL: "https://bundle.org-b.test:8443/",
					Profile:           ProfileHTTPSSPIFFE,
					EndpointSPIFFEID:  "spiffe://org-b.test/bundlex",
					BundlePath:        bundlePath,
					BundleFormat:      BundleFormatSPIFFE,
				},
				"org-c.test": {
					BundleEndpointURL: "https://org-c.test/bundle?format=spiffe",
					Profile:           ProfileHTTPSWeb,
					CAFile:            caPath,
					BundleFormat:      BundleFormatSPIFFE,
				},
				"org-d.test": {
					BundleEndpointURL: "https://[2001:db8::1]:8443/",
					Profile:           ProfileHTTPSSPIFFE,
					EndpointSPIFFEID:  "spiffe://org-b.test/bundlex/org-d",
					BundleFormat:      BundleFormatPEM,
				},
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.modify(cfg)
			require.NoError(t, cfg.Validate())
		})
	}
}

// webRelationship returns a valid https_web relationship to change in one field.
func webRelationship() Relationship {
	return Relationship{
		BundleEndpointURL: "https://org-b.test/",
		Profile:           ProfileHTTPSWeb,
		BundleFormat:      BundleFormatSPIFFE,
	}
}

// withRelationship adds one relationship named org-b.test after changing it.
func withRelationship(change func(r *Relationship)) func(c *Config) {
	return func(c *Config) {
		rel := webRelationship()
		change(&rel)
		c.Federation.TrustDomains["org-b.test"] = rel
	}
}

const orgB = `federation.trust_domains["org-b.test"]`

type validationCase struct {
	name   string
	modify func(c *Config)
	want   string
}

var nodeValidationCases = []validationCase{
	{"trust domain missing", func(c *Config) { c.TrustDomain = "" },
		"config: trust_domain: missing value: set it in the file, " +
			"with BUNDLEX_TRUST_DOMAIN or with --trust-domain"},
	{"trust domain upper case", func(c *Config) { c.TrustDomain = "Example.org" },
		`config: trust_domain: invalid value "Example.org": trust domain characters are ` +
			"limited to lowercase letters, numbers, dots, dashes, and underscores; " +
			"use a name such as example.org"},
	{"trust domain as ID", func(c *Config) { c.TrustDomain = "spiffe://example.org" },
		`config: trust_domain: invalid value "spiffe://example.org": ` +
			"use the bare name example.org, not a SPIFFE ID"},
	{"trust domain too long", func(c *Config) { c.TrustDomain = strings.Repeat("a", 256) },
		`config: trust_domain: invalid value "` + strings.Repeat("a", 256) +
			`": use a name of at most 255 bytes`},
	{"node name missing", func(c *Config) { c.NodeName = "" },
		"config: node_name: missing value: set a name unique in the cluster"},
	{"data dir missing", func(c *Config) { c.DataDir = "" },
		"config: data_dir: missing value: set a directory for the Raft log, snapshots and keys"},
	{"log level unknown", func(c *Config) { c.LogLevel = "verbose" },
		`config: log_level: invalid value "verbose": use debug, info, warn or error`},
	{"log format unknown", func(c *Config) { c.LogFormat = "xml" },
		`config: log_format: invalid value "xml": use text or json`},
	{"socket path missing", func(c *Config) { c.Admin.SocketPath = "" },
		"config: admin.socket_path: missing value: set a Unix socket path"},
	{"socket path too long", func(c *Config) { c.Admin.SocketPath = "/" + strings.Repeat("s", 107) },
		`config: admin.socket_path: invalid value "/` + strings.Repeat("s", 107) +
			`": use a path of at most 107 bytes, the Unix socket limit`},
	{"health address without port", func(c *Config) { c.Health.Address = "localhost" },
		`config: health.address: invalid value "localhost": ` +
			"use host:port, such as 127.0.0.1:8443"},
}

var endpointValidationCases = []validationCase{
	{"endpoint address missing", func(c *Config) { c.BundleEndpoint.Address = "" },
		"config: bundle_endpoint.address: missing value: set host:port, such as 127.0.0.1:8443"},
	{"endpoint port out of range", func(c *Config) { c.BundleEndpoint.Address = ":99999" },
		`config: bundle_endpoint.address: invalid value ":99999": ` +
			"use host:port, such as 127.0.0.1:8443"},
	{"endpoint path relative", func(c *Config) { c.BundleEndpoint.Path = "bundle" },
		`config: bundle_endpoint.path: invalid value "bundle": ` +
			"use a URL path starting with /, without query or fragment"},
	{"endpoint path with query", func(c *Config) { c.BundleEndpoint.Path = "/b?x=1" },
		`config: bundle_endpoint.path: invalid value "/b?x=1": ` +
			"use a URL path starting with /, without query or fragment"},
	{"endpoint profile unknown", func(c *Config) { c.BundleEndpoint.Profile = "https" },
		`config: bundle_endpoint.profile: invalid value "https": use https_spiffe or https_web`},
	{"endpoint ID missing", func(c *Config) { c.BundleEndpoint.SPIFFEID = "" },
		"config: bundle_endpoint.spiffe_id: missing value: " +
			"set a SPIFFE ID such as spiffe://example.org/bundlex"},
	{"endpoint ID foreign", func(c *Config) {
		c.BundleEndpoint.SPIFFEID = "spiffe://other.org/bundlex"
	}, `config: bundle_endpoint.spiffe_id: invalid value "spiffe://other.org/bundlex": ` +
		"use an ID in the local trust domain, such as spiffe://example.org/bundlex"},
	{"endpoint ID empty segment", func(c *Config) {
		c.BundleEndpoint.SPIFFEID = "spiffe://example.org/a//b"
	}, `config: bundle_endpoint.spiffe_id: invalid value "spiffe://example.org/a//b": ` +
		"path cannot contain empty segments; use a SPIFFE ID such as " +
		"spiffe://example.org/bundlex"},
	{"endpoint ID too long", func(c *Config) {
		c.BundleEndpoint.SPIFFEID = "spiffe://example.org/" + strings.Repeat("p", 2028)
	}, `config: bundle_endpoint.spiffe_id: invalid value "spiffe://example.org/` +
		strings.Repeat("p", 2028) + `": use an ID of at most 2048 bytes`},
	{"refresh hint below second", func(c *Config) {
		c.BundleEndpoint.RefreshHint = 500 * time.Millisecond
	}, "config: bundle_endpoint.refresh_hint: invalid value 500ms: " +
		"use whole seconds of at least 1s, such as 5m"},
	{"refresh hint fraction", func(c *Config) {
		c.BundleEndpoint.RefreshHint = 1500 * time.Millisecond
	}, "config: bundle_endpoint.refresh_hint: invalid value 1.5s: " +
		"use whole seconds of at least 1s, such as 5m"},
	{"web profile without cert", func(c *Config) {
		c.BundleEndpoint.Profile = ProfileHTTPSWeb
		c.BundleEndpoint.KeyFile = "/tls.key"
	}, "config: bundle_endpoint.cert_file: missing value: " +
		"required when bundle_endpoint.profile is https_web"},
	{"web profile without key", func(c *Config) {
		c.BundleEndpoint.Profile = ProfileHTTPSWeb
		c.BundleEndpoint.CertFile = "/tls.crt"
	}, "config: bundle_endpoint.key_file: missing value: " +
		"required when bundle_endpoint.profile is https_web"},
	{"spiffe profile with cert", func(c *Config) { c.BundleEndpoint.CertFile = "/tls.crt" },
		`config: bundle_endpoint.cert_file: invalid value "/tls.crt": only used when ` +
			"bundle_endpoint.profile is https_web; remove it or change bundle_endpoint.profile"},
	{"spiffe profile with key", func(c *Config) { c.BundleEndpoint.KeyFile = "/tls.key" },
		`config: bundle_endpoint.key_file: invalid value "/tls.key": only used when ` +
			"bundle_endpoint.profile is https_web; remove it or change bundle_endpoint.profile"},
}

var authorityValidationCases = []validationCase{
	{"authority type unknown", func(c *Config) { c.Authority.Type = "vault" },
		`config: authority.type: invalid value "vault": use builtin or file`},
	{"authority format unknown", func(c *Config) { c.Authority.BundleFormat = "der" },
		`config: authority.bundle_format: invalid value "der": use spiffe or pem`},
	{"CA TTL zero", func(c *Config) { c.Authority.CATTL = 0 },
		"config: authority.ca_ttl: invalid value 0s: use a positive duration, such as 168h"},
	{"JWT key TTL negative", func(c *Config) { c.Authority.JWTKeyTTL = -time.Hour },
		"config: authority.jwt_key_ttl: invalid value -1h0m0s: " +
			"use a positive duration, such as 24h"},
	{"X509 SVID TTL zero", func(c *Config) { c.Authority.X509SVIDMaxTTL = 0 },
		"config: authority.x509_svid_max_ttl: invalid value 0s: " +
			"use a positive duration, such as 1h"},
	{"JWT SVID TTL zero", func(c *Config) { c.Authority.JWTSVIDMaxTTL = 0 },
		"config: authority.jwt_svid_max_ttl: invalid value 0s: " +
			"use a positive duration, such as 5m"},
	{"X509 SVID outlives CA", func(c *Config) { c.Authority.X509SVIDMaxTTL = 168 * time.Hour },
		"config: authority.x509_svid_max_ttl: invalid value 168h0m0s: " +
			"use less than authority.ca_ttl (168h0m0s)"},
	{"JWT SVID outlives key", func(c *Config) { c.Authority.JWTSVIDMaxTTL = 25 * time.Hour },
		"config: authority.jwt_svid_max_ttl: invalid value 25h0m0s: " +
			"use less than authority.jwt_key_ttl (24h0m0s)"},
	{"publish lead negative", func(c *Config) { c.Authority.PublishLead = -time.Minute },
		"config: authority.publish_lead: invalid value -1m0s: " +
			"use 0 for 4 refresh hints, or a positive duration"},
	{"publish lead too short", func(c *Config) { c.Authority.PublishLead = 10 * time.Minute },
		"config: authority.publish_lead: invalid value 10m0s: use at least " +
			"3 x bundle_endpoint.refresh_hint (15m0s), or 0 for 4 refresh hints"},
	{"publish lead above TTL", func(c *Config) { c.Authority.PublishLead = 24 * time.Hour },
		"config: authority.publish_lead: invalid value 24h0m0s: use less than " +
			"authority.jwt_key_ttl (24h0m0s), or raise authority.jwt_key_ttl"},
	{"derived lead above TTL", func(c *Config) { c.BundleEndpoint.RefreshHint = 6 * time.Hour },
		"config: authority.publish_lead: invalid value 0 (4 x bundle_endpoint.refresh_hint " +
			"= 24h0m0s): use less than authority.jwt_key_ttl (24h0m0s), " +
			"or raise authority.jwt_key_ttl"},
	{"builtin with bundle path", func(c *Config) { c.Authority.BundlePath = "/b.json" },
		`config: authority.bundle_path: invalid value "/b.json": only used when ` +
			"authority.type is file; remove it or change authority.type"},
	{"builtin with endpoint cert", func(c *Config) { c.Authority.EndpointCertFile = "/s.pem" },
		`config: authority.endpoint_cert_file: invalid value "/s.pem": only used when ` +
			"authority.type is file; remove it or change authority.type"},
	{"file without bundle path", func(c *Config) {
		c.Authority.Type = AuthorityFile
		c.Authority.EndpointCertFile = "/s.pem"
		c.Authority.EndpointKeyFile = "/s.key"
	}, "config: authority.bundle_path: missing value: required when authority.type is file"},
	{"file without endpoint key", func(c *Config) {
		c.Authority.Type = AuthorityFile
		c.Authority.BundlePath = "/b.json"
		c.Authority.EndpointCertFile = "/s.pem"
	}, "config: authority.endpoint_key_file: missing value: " +
		"required when bundle_endpoint.profile is https_spiffe"},
	{"file web with SVID", func(c *Config) {
		c.Authority.Type = AuthorityFile
		c.Authority.BundlePath = "/b.json"
		c.Authority.EndpointCertFile = "/s.pem"
		c.BundleEndpoint.Profile = ProfileHTTPSWeb
		c.BundleEndpoint.CertFile = "/tls.crt"
		c.BundleEndpoint.KeyFile = "/tls.key"
	}, `config: authority.endpoint_cert_file: invalid value "/s.pem": only used when ` +
		"bundle_endpoint.profile is https_spiffe; remove it or change bundle_endpoint.profile"},
}

var federationValidationCases = []validationCase{
	{"min refresh zero", func(c *Config) { c.Federation.MinRefresh = 0 },
		"config: federation.min_refresh: invalid value 0s: " +
			"use a positive duration, such as 30s"},
	{"max below min refresh", func(c *Config) { c.Federation.MaxRefresh = 10 * time.Second },
		"config: federation.max_refresh: invalid value 10s: " +
			"use at least federation.min_refresh (30s)"},
	{"default refresh above max", func(c *Config) { c.Federation.DefaultRefresh = 2 * time.Hour },
		"config: federation.default_refresh: invalid value 2h0m0s: use a duration from " +
			"federation.min_refresh (30s) to federation.max_refresh (1h0m0s)"},
	{"fetch timeout zero", func(c *Config) { c.Federation.FetchTimeout = 0 },
		"config: federation.fetch_timeout: invalid value 0s: " +
			"use a positive duration, such as 10s"},
	{"backoff below min refresh", func(c *Config) { c.Federation.RetryBackoffMax = time.Second },
		"config: federation.retry_backoff_max: invalid value 1s: " +
			"use at least federation.min_refresh (30s)"},
	{"bundle size zero", func(c *Config) { c.Federation.MaxBundleSize = 0 },
		"config: federation.max_bundle_size: invalid value 0B: use a positive size, such as 1MiB"},
	{"redirects negative", func(c *Config) { c.Federation.MaxRedirects = -1 },
		"config: federation.max_redirects: invalid value -1: " +
			"use 0 to refuse redirects, or a positive count"},
	{"relationship name upper case", func(c *Config) {
		c.Federation.TrustDomains["Org-B.test"] = webRelationship()
	}, `config: federation.trust_domains["Org-B.test"]: invalid value "Org-B.test": trust ` +
		"domain characters are limited to lowercase letters, numbers, dots, dashes, and " +
		"underscores; use a name such as example.org"},
	{"relationship with local domain", func(c *Config) {
		c.Federation.TrustDomains["example.org"] = webRelationship()
	}, `config: federation.trust_domains["example.org"]: invalid value "example.org": use ` +
		"another trust domain; this is the local one, whose bundle the node publishes"},
	{"relationship URL missing", withRelationship(func(r *Relationship) {
		r.BundleEndpointURL = ""
	}), "config: " + orgB + ".bundle_endpoint_url: missing value: " +
		"set the peer's bundle endpoint URL, such as https://example.org/"},
	{"relationship URL plain http", withRelationship(func(r *Relationship) {
		r.BundleEndpointURL = "http://org-b.test/"
	}), "config: " + orgB + `.bundle_endpoint_url: invalid value "http://org-b.test/": ` +
		"use an https URL"},
	{"relationship URL with userinfo", withRelationship(func(r *Relationship) {
		r.BundleEndpointURL = "https://user:pw@org-b.test/"
	}), "config: " + orgB + `.bundle_endpoint_url: invalid value ` +
		`"https://user:pw@org-b.test/": remove the user information; bundle endpoints take none`},
	{"relationship URL without host", withRelationship(func(r *Relationship) {
		r.BundleEndpointURL = "https:///bundle"
	}), "config: " + orgB + `.bundle_endpoint_url: invalid value "https:///bundle": ` +
		"use a URL with a host, such as https://example.org/"},
	{"relationship URL with fragment", withRelationship(func(r *Relationship) {
		r.BundleEndpointURL = "https://org-b.test/#b"
	}), "config: " + orgB + `.bundle_endpoint_url: invalid value "https://org-b.test/#b": ` +
		"remove the fragment; it is never sent to the server"},
	{"relationship profile missing", withRelationship(func(r *Relationship) { r.Profile = "" }),
		"config: " + orgB + ".profile: missing value: use https_spiffe or https_web"},
	{"relationship profile unknown", withRelationship(func(r *Relationship) {
		r.Profile = "spiffe"
	}), "config: " + orgB + `.profile: invalid value "spiffe": use https_spiffe or https_web`},
	{"relationship format unknown", withRelationship(func(r *Relationship) {
		r.BundleFormat = "jwks"
	}), "config: " + orgB + `.bundle_format: invalid value "jwks": use spiffe or pem`},
	{"spiffe relationship without ID", withRelationship(func(r *Relationship) {
		r.Profile = ProfileHTTPSSPIFFE
	}), "config: " + orgB + ".endpoint_spiffe_id: missing value: " +
		"set a SPIFFE ID such as spiffe://example.org/bundlex"},
	{"spiffe relationship bad ID", withRelationship(func(r *Relationship) {
		r.Profile = ProfileHTTPSSPIFFE
		r.EndpointSPIFFEID = "https://org-b.test/bundlex"
	}), "config: " + orgB + `.endpoint_spiffe_id: invalid value "https://org-b.test/bundlex": ` +
		"scheme is missing or invalid; use a SPIFFE ID such as spiffe://example.org/bundlex"},
	{"self-serving without bootstrap bundle", withRelationship(func(r *Relationship) {
		r.Profile = ProfileHTTPSSPIFFE
		r.EndpointSPIFFEID = "spiffe://org-b.test/bundlex"
	}), "config: " + orgB + ".bundle_path: missing value: endpoint_spiffe_id " +
		"spiffe://org-b.test/bundlex is in trust domain org-b.test, so set a bootstrap " +
		"bundle of that trust domain"},
	{"spiffe relationship with CA", withRelationship(func(r *Relationship) {
		r.Profile = ProfileHTTPSSPIFFE
		r.EndpointSPIFFEID = "spiffe://example.org/bundlex"
		r.CAFile = "/ca.pem"
	}), "config: " + orgB + `.ca_file: invalid value "/ca.pem": only used when ` + orgB +
		".profile is https_web; remove it or change " + orgB + ".profile"},
	{"web relationship with ID", withRelationship(func(r *Relationship) {
		r.EndpointSPIFFEID = "spiffe://org-b.test/bundlex"
	}), "config: " + orgB + `.endpoint_spiffe_id: invalid value "spiffe://org-b.test/bundlex": ` +
		"only used when " + orgB + ".profile is https_spiffe; remove it or change " +
		orgB + ".profile"},
}

var raftValidationCases = []validationCase{
	{"raft retain zero", func(c *Config) { c.Raft.SnapshotRetain = 0 },
		"config: raft.snapshot_retain: invalid value 0: use at least 1"},
	{"raft threshold zero", func(c *Config) { c.Raft.SnapshotThreshold = 0 },
		"config: raft.snapshot_threshold: invalid value 0: use at least 1"},
	{"raft apply timeout zero", func(c *Config) { c.Raft.ApplyTimeout = 0 },
		"config: raft.apply_timeout: invalid value 0s: use a positive duration, such as 10s"},
}

func TestValidateErrorMessages(t *testing.T) {
	groups := [][]validationCase{nodeValidationCases, endpointValidationCases,
		authorityValidationCases, federationValidationCases, raftValidationCases}
	for _, group := range groups {
		for _, tt := range group {
			t.Run(tt.name, func(t *testing.T) {
				cfg := validConfig()
				tt.modify(cfg)
				err := cfg.Validate()
				require.Error(t, err)
				require.Contains(t, errorLines(err), tt.want)
			})
		}
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	cfg := validConfig()
	cfg.LogLevel = "loud"
	cfg.Raft.SnapshotRetain = 0
	err := cfg.Validate()
	require.Equal(t, []string{
		`config: log_level: invalid value "loud": use debug, info, warn or error`,
		"config: raft.snapshot_retain: invalid value 0: use at least 1",
	}, errorLines(err))
}
