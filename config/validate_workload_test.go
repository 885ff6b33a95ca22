package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseIDPathTemplate(t *testing.T) {
	tests := []struct {
		name       string
		text       string
		wantPath   string
		wantPrefix string
	}{
		{"uid placeholder", "/workload/uid/{uid}", "/workload/uid/1000", "/workload/uid/"},
		{"uid and gid", "/workload/{gid}/{uid}", "/workload/50/1000", "/workload/"},
		{"placeholder inside segment", "/w/uid-{uid}.gid-{gid}", "/w/uid-1000.gid-50",
			"/w/uid-"},
		{"placeholder repeated", "/w/{uid}/{uid}", "/w/1000/1000", "/w/"},
		{"no placeholder", "/workload/local", "/workload/local", "/workload/local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			template, err := ParseIDPathTemplate(tt.text)
			require.NoError(t, err)
			require.Equal(t, tt.wantPath, template.Expand(1000, 50))
			require.Equal(t, tt.wantPrefix, template.FixedPrefix())
			require.Equal(t, tt.text, template.String())
			require.Equal(t, strings.Contains(tt.text, "{"), template.HasPlaceholder())
		})
	}
	t.Run("largest IDs", func(t *testing.T) {
		template, err := ParseIDPathTemplate("/u/{uid}/g/{gid}")
		require.NoError(t, err)
		require.Equal(t, "/u/4294967295/g/0", template.Expand(4294967295, 0))
	})
}

func TestParseIDPathTemplateErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string
	}{
		{"no leading slash", "workload/{uid}", "the path must start with /"},
		{"unknown placeholder", "/workload/{user}", "unknown placeholder {user}"},
		{"placeholder case differs", "/workload/{UID}", "unknown placeholder {UID}"},
		{"unclosed placeholder", "/workload/{uid", `placeholder "{uid" has no closing }`},
		{"stray closing brace", "/workload/uid}", "the expanded path is not a valid " +
			"SPIFFE ID path: path segment characters are limited to letters, numbers, " +
			"dots, dashes, and underscores"},
		{"trailing slash", "/workload/{uid}/", "the expanded path is not a valid " +
			"SPIFFE ID path: path cannot have a trailing slash"},
		{"empty segment", "/workload//{uid}", "the expanded path is not a valid " +
			"SPIFFE ID path: path cannot contain empty segments"},
		{"dot segment", "/workload/../{uid}", "the expanded path is not a valid " +
			"SPIFFE ID path: path cannot contain dot segments"},
		{"root only", "/", "the expanded path is not a valid SPIFFE ID path: path " +
			"cannot have a trailing slash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIDPathTemplate(tt.text)
			require.EqualError(t, err, tt.want)
		})
	}
}

// workloadSVIDConfig returns a valid configuration that issues SVIDs.
func workloadSVIDConfig() *Config {
	cfg := validConfig()
	cfg.Consumers.WorkloadAPISocket = "/run/bundlex/workload.sock"
	cfg.Consumers.WorkloadSVIDPathTemplate = "/workload/uid/{uid}"
	return cfg
}

func TestValidateAcceptsWorkloadSVIDs(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
	}{
		{"template with defaults", func(c *Config) {}},
		{"ttl at the x509 maximum", func(c *Config) {
			c.Consumers.WorkloadSVIDTTL = c.Authority.X509SVIDMaxTTL
		}},
		// JWT-SVIDs get the shorter of svid_ttl and jwt_svid_max_ttl.
		{"ttl over the jwt maximum", func(c *Config) {
			c.Consumers.WorkloadSVIDTTL = 30 * time.Minute
			c.Authority.JWTSVIDMaxTTL = time.Minute
		}},
		{"allowed uids", func(c *Config) {
			c.Consumers.WorkloadSVIDAllowedUIDs = []uint32{0, 1000}
		}},
		{"prefix with trailing slash", func(c *Config) {
			c.Authority.MintAllowedIDPrefixes = []string{"spiffe://example.org/workload/"}
		}},
		{"prefix without trailing slash", func(c *Config) {
			c.Authority.MintAllowedIDPrefixes = []string{"spiffe://example.org/agents/",
				"spiffe://example.org/workload/uid"}
		}},
		{"prefix equal to the fixed part", func(c *Config) {
			c.Authority.MintAllowedIDPrefixes = []string{"spiffe://example.org/workload/uid/"}
		}},
		{"fixed template for one user", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = "/workload/local"
			c.Consumers.WorkloadSVIDAllowedUIDs = []uint32{1000}
			c.Authority.MintAllowedIDPrefixes = []string{"spiffe://example.org/workload/local"}
		}},
		{"template never yields endpoint ID", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = "/w/{uid}/{uid}"
			c.BundleEndpoint.SPIFFEID = "spiffe://example.org/w/1/2"
		}},
		{"endpoint ID with leading zero", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = "/w/{uid}"
			c.BundleEndpoint.SPIFFEID = "spiffe://example.org/w/01"
		}},
		{"endpoint ID over 32 bits", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = "/w/{uid}"
			c.BundleEndpoint.SPIFFEID = "spiffe://example.org/w/4294967296"
		}},
		{"reserved word later in path", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = "/workload/bundlex/{uid}"
		}},
		{"ttl without template", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = ""
			c.Consumers.WorkloadSVIDTTL = 48 * time.Hour
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := workloadSVIDConfig()
			tt.modify(cfg)
			require.NoError(t, cfg.Validate())
		})
	}
}

func TestValidateWorkloadSVIDErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		want   string
	}{
		{"ttl zero", func(c *Config) { c.Consumers.WorkloadSVIDTTL = 0 },
			"config: workload_api.svid_ttl: invalid value 0s: use a duration of at least 1s, " +
				"because certificate times have whole seconds"},
		{"ttl negative without template", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = ""
			c.Consumers.WorkloadSVIDTTL = -time.Minute
		}, "config: workload_api.svid_ttl: invalid value -1m0s: use a duration of at " +
			"least 1s, because certificate times have whole seconds"},
		{"ttl over x509 maximum", func(c *Config) {
			c.Consumers.WorkloadSVIDTTL = 2 * time.Hour
		}, "config: workload_api.svid_ttl: invalid value 2h0m0s: use at most " +
			"authority.x509_svid_max_ttl (1h0m0s), or raise that maximum"},
		{"file authority", func(c *Config) {
			c.Authority.Type = AuthorityFile
			c.Authority.BundlePath = "/etc/bundlex/bundle.json"
			c.Authority.EndpointCertFile = "/etc/bundlex/svid.pem"
			c.Authority.EndpointKeyFile = "/etc/bundlex/svid.key"
		}, `config: workload_api.svid_path_template: invalid value "/workload/uid/{uid}": ` +
			`requires authority.type builtin, but it is "file": only the built-in ` +
			"authority holds signing keys; remove the template or use the built-in authority"},
		{"socket missing", func(c *Config) { c.Consumers.WorkloadAPISocket = "" },
			`config: workload_api.svid_path_template: invalid value "/workload/uid/{uid}": ` +
				"only used when workload_api.socket_path is set; set the socket path or " +
				"remove the template"},
		{"unknown placeholder", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = "/workload/{user}"
		}, `config: workload_api.svid_path_template: invalid value "/workload/{user}": ` +
			"unknown placeholder {user}; use a path such as /workload/uid/{uid}, with the " +
			"placeholders {uid} and {gid}"},
		{"no leading slash", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = "workload/{uid}"
		}, `config: workload_api.svid_path_template: invalid value "workload/{uid}": ` +
			"the path must start with /; use a path such as /workload/uid/{uid}, with the " +
			"placeholders {uid} and {gid}"},
		{"outside mint prefixes", func(c *Config) {
			c.Authority.MintAllowedIDPrefixes = []string{"spiffe://example.org/agents/"}
		}, `config: workload_api.svid_path_template: invalid value "/workload/uid/{uid}": ` +
			"the IDs it yields start with spiffe://example.org/workload/uid/, which is " +
			"outside authority.mint_allowed_id_prefixes (spiffe://example.org/agents/); use " +
			"a template whose part before the first placeholder falls under one of them"},
		{"prefix matches whole segments", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = "/workload/uid{uid}"
			c.Authority.MintAllowedIDPrefixes = []string{"spiffe://example.org/workload/uid"}
		}, `config: workload_api.svid_path_template: invalid value "/workload/uid{uid}": ` +
			"the IDs it yields start with spiffe://example.org/workload/uid, which is " +
			"outside authority.mint_allowed_id_prefixes (spiffe://example.org/workload/uid); " +
			"use a template whose part before the first placeholder falls under one of them"},
		{"ID too long", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = "/" + strings.Repeat("w", 2030) + "/{uid}"
		}, "config: workload_api.svid_path_template: invalid value \"/" +
			strings.Repeat("w", 2030) + "/{uid}\": the longest ID it yields has 2062 " +
			"bytes; use a shorter path, because a SPIFFE ID has at most 2048 bytes"},
		{"template without placeholder", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = "/bundlex"
		}, `config: workload_api.svid_path_template: invalid value "/bundlex": it has no ` +
			"placeholder, so every local caller would get the same SPIFFE ID and could act " +
			"as any other; add {uid} or {gid}, such as /workload/uid/{uid}, or allow one " +
			"user with workload_api.svid_allowed_uids"},
		{"fixed template for two users", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = "/agents/planner"
			c.Consumers.WorkloadSVIDAllowedUIDs = []uint32{1000, 1001}
		}, `config: workload_api.svid_path_template: invalid value "/agents/planner": it ` +
			"has no placeholder, so every local caller would get the same SPIFFE ID and " +
			"could act as any other; add {uid} or {gid}, such as /workload/uid/{uid}, or " +
			"allow one user with workload_api.svid_allowed_uids"},
		{"reserved path", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = "/bundlex/{uid}"
		}, `config: workload_api.svid_path_template: invalid value "/bundlex/{uid}": the ` +
			"IDs under spiffe://example.org/bundlex are reserved for bundlex's own " +
			"identities, such as the bundle endpoint's SPIFFE ID; use a path outside " +
			"/bundlex, such as /workload/uid/{uid}"},
		{"reserved path for one user", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = "/bundlex"
			c.Consumers.WorkloadSVIDAllowedUIDs = []uint32{1000}
		}, `config: workload_api.svid_path_template: invalid value "/bundlex": the ` +
			"IDs under spiffe://example.org/bundlex are reserved for bundlex's own " +
			"identities, such as the bundle endpoint's SPIFFE ID; use a path outside " +
			"/bundlex, such as /workload/uid/{uid}"},
		{"yields endpoint ID", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = "/spire/{uid}-{gid}"
			c.BundleEndpoint.SPIFFEID = "spiffe://example.org/spire/0-1000"
		}, `config: workload_api.svid_path_template: invalid value "/spire/{uid}-{gid}": ` +
			"it can yield spiffe://example.org/spire/0-1000, the bundle_endpoint.spiffe_id " +
			"that peers require from this node's https_spiffe endpoint; use a path that " +
			"cannot yield that ID"},
		{"allowed uids without template", func(c *Config) {
			c.Consumers.WorkloadSVIDPathTemplate = ""
			c.Consumers.WorkloadSVIDAllowedUIDs = []uint32{1000, 1001}
		}, `config: workload_api.svid_allowed_uids: invalid value "1000,1001": only used ` +
			"when workload_api.svid_path_template is set; set the template or remove the list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := workloadSVIDConfig()
			tt.modify(cfg)
			require.Equal(t, []string{tt.want}, errorLines(cfg.Validate()))
		})
	}
}

func TestLoadWorkloadSVIDSettings(t *testing.T) {
	const base = "trust_domain: example.org\ndata_dir: /var/lib/bundlex\nnode_name: n1\n" +
		"workload_api:\n  socket_path: /run/bundlex/workload.sock\n" +
		"  svid_path_template: /workload/uid/{uid}\n  svid_ttl: 30m\n"
	tests := []struct {
		name  string
		file  string
		env   string
		flags []string
		want  []uint32
	}{
		{"YAML list of numbers", "  svid_allowed_uids: [0, 1000]\n", "", nil,
			[]uint32{0, 1000}},
		{"YAML list of strings", "  svid_allowed_uids: [\"1000\"]\n", "", nil,
			[]uint32{1000}},
		{"single YAML number", "  svid_allowed_uids: 1000\n", "", nil, []uint32{1000}},
		{"comma string in file", "  svid_allowed_uids: 1000,1001\n", "", nil,
			[]uint32{1000, 1001}},
		{"empty YAML list", "  svid_allowed_uids: []\n", "", nil, nil},
		{"env with spaces", "", " 1000 , 4294967295 ", nil, []uint32{1000, 4294967295}},
		{"flag repeated", "", "", []string{"--workload-api-svid-allowed-uids=7",
			"--workload-api-svid-allowed-uids=8"}, []uint32{7, 8}},
		{"flag beats env", "", "1", []string{"--workload-api-svid-allowed-uids", "2,3"},
			[]uint32{2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			if tt.env != "" {
				t.Setenv("BUNDLEX_WORKLOAD_API_SVID_ALLOWED_UIDS", tt.env)
			}
			cfg, err := Load(LoadOptions{ConfigFile: writeFile(t, base+tt.file),
				Flags: parseFlags(t, tt.flags...)})
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg.Consumers.WorkloadSVIDAllowedUIDs)
			require.Equal(t, "/workload/uid/{uid}", cfg.Consumers.WorkloadSVIDPathTemplate)
			require.Equal(t, 30*time.Minute, cfg.Consumers.WorkloadSVIDTTL)
		})
	}
}

func TestLoadRejectsBadUIDs(t *testing.T) {
	const base = "trust_domain: example.org\ndata_dir: /var/lib/bundlex\nnode_name: n1\n" +
		"workload_api:\n  socket_path: /run/bundlex/workload.sock\n" +
		"  svid_path_template: /workload/uid/{uid}\n"
	const hint = "use whole numbers from 0 to 4294967295, comma-separated or as a YAML " +
		"list, such as 1000,1001"
	tests := []struct {
		name  string
		value string
		want  string
	}{
		{"negative", "[-1]", "[-1]"},
		{"over 32 bits", "[4294967296]", "[4294967296]"},
		{"user name", "[alice]", "[alice]"},
		{"empty entry", `"1000,,1001"`, `"1000,,1001"`},
		{"fraction", "[1000.5]", "[1000.5]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			path := writeFile(t, base+"  svid_allowed_uids: "+tt.value+"\n")
			_, err := Load(LoadOptions{ConfigFile: path})
			require.Equal(t, []string{"config: workload_api.svid_allowed_uids: invalid value " +
				tt.want + ": " + hint}, errorLines(err))
		})
	}
}
