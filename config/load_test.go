package config

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

const minimalFile = `
trust_domain: example.org
data_dir: /var/lib/bundlex
node_name: node-1
`

func TestLoadDefaults(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(LoadOptions{ConfigFile: writeFile(t, minimalFile)})
	require.NoError(t, err)

	want := validConfig()
	require.Equal(t, want, cfg)
	require.Equal(t, "/var/lib/bundlex/admin.sock", cfg.Admin.SocketPath)
	require.Equal(t, "spiffe://example.org/bundlex", cfg.BundleEndpoint.SPIFFEID)
}

func TestLoadWithoutFile(t *testing.T) {
	clearEnv(t)
	t.Setenv("BUNDLEX_TRUST_DOMAIN", "example.org")
	t.Setenv("BUNDLEX_DATA_DIR", "/data")
	cfg, err := Load(LoadOptions{})
	require.NoError(t, err)
	require.Equal(t, "example.org", cfg.TrustDomain)
	require.Equal(t, "/data/admin.sock", cfg.Admin.SocketPath)
}

func TestLoadRequiredKeysMissing(t *testing.T) {
	clearEnv(t)
	_, err := Load(LoadOptions{})
	require.Equal(t, []string{
		"config: trust_domain: missing value: set it in the file, " +
			"with BUNDLEX_TRUST_DOMAIN or with --trust-domain",
		"config: data_dir: missing value: set a directory for the Raft log, snapshots and keys",
	}, errorLines(err))
}

// TestLoadPrecedence sets one key of each value type in up to three layers
// and checks that the highest layer wins.
func TestLoadPrecedence(t *testing.T) {
	type layerValues struct{ file, env, flag string }
	tests := []struct {
		name   string
		key    string
		values layerValues
		get    func(c *Config) any
		want   any
	}{
		{"file alone sets string", "bundle_endpoint.address",
			layerValues{file: "127.0.0.1:1001"},
			func(c *Config) any { return c.BundleEndpoint.Address }, "127.0.0.1:1001"},
		{"env beats file string", "bundle_endpoint.address",
			layerValues{file: "127.0.0.1:1001", env: "127.0.0.1:1002"},
			func(c *Config) any { return c.BundleEndpoint.Address }, "127.0.0.1:1002"},
		{"flag beats env string", "bundle_endpoint.address",
			layerValues{file: "127.0.0.1:1001", env: "127.0.0.1:1002", flag: "127.0.0.1:1003"},
			func(c *Config) any { return c.BundleEndpoint.Address }, "127.0.0.1:1003"},
		{"flag beats file duration", "federation.fetch_timeout",
			layerValues{file: "20s", flag: "40s"},
			func(c *Config) any { return c.Federation.FetchTimeout }, 40 * time.Second},
		{"env beats file duration", "federation.fetch_timeout",
			layerValues{file: "20s", env: "30s"},
			func(c *Config) any { return c.Federation.FetchTimeout }, 30 * time.Second},
		{"env beats file integer", "raft.snapshot_retain",
			layerValues{file: "4", env: "5"},
			func(c *Config) any { return c.Raft.SnapshotRetain }, 5},
		{"flag beats env integer", "raft.snapshot_retain",
			layerValues{env: "5", flag: "6"},
			func(c *Config) any { return c.Raft.SnapshotRetain }, 6},
		{"flag beats env uint64", "raft.snapshot_threshold",
			layerValues{file: "100", env: "200", flag: "300"},
			func(c *Config) any { return c.Raft.SnapshotThreshold }, uint64(300)},
		{"env beats file size", "federation.max_bundle_size",
			layerValues{file: "2MiB", env: "4MiB"},
			func(c *Config) any { return c.Federation.MaxBundleSize }, ByteSize(4 << 20)},
		{"flag beats env size", "federation.max_bundle_size",
			layerValues{file: "2MiB", env: "4MiB", flag: "65536"},
			func(c *Config) any { return c.Federation.MaxBundleSize }, ByteSize(65536)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			content := minimalFile
			if tt.values.file != "" {
				content += nestedYAML(tt.key, tt.values.file)
			}
			if tt.values.env != "" {
				t.Setenv(EnvName(tt.key), tt.values.env)
			}
			var args []string
			if tt.values.flag != "" {
				args = append(args, "--"+FlagName(tt.key)+"="+tt.values.flag)
			}
			cfg, err := Load(LoadOptions{
				ConfigFile: writeFile(t, content),
				Flags:      parseFlags(t, args...),
			})
			require.NoError(t, err)
			require.Equal(t, tt.want, tt.get(cfg))
		})
	}
}

// nestedYAML writes "section.key" as a two-level YAML mapping.
func nestedYAML(key, value string) string {
	section, leaf := filepath.Split(filepath.FromSlash(dotsToSlashes(key)))
	return filepath.Clean(section) + ":\n  " + leaf + ": " + value + "\n"
}

func dotsToSlashes(key string) string {
	out := []byte(key)
	for i, c := range out {
		if c == '.' {
			out[i] = '/'
		}
	}
	return string(out)
}

func TestLoadUnsetFlagKeepsEnv(t *testing.T) {
	clearEnv(t)
	t.Setenv("BUNDLEX_LOG_LEVEL", "debug")
	// Every flag is defined with its default, but none is set on the command line.
	cfg, err := Load(LoadOptions{ConfigFile: writeFile(t, minimalFile), Flags: parseFlags(t)})
	require.NoError(t, err)
	require.Equal(t, "debug", cfg.LogLevel)
}

func TestLoadEmptyEnvDisablesHealth(t *testing.T) {
	clearEnv(t)
	t.Setenv("BUNDLEX_HEALTH_ADDRESS", "")
	cfg, err := Load(LoadOptions{ConfigFile: writeFile(t, minimalFile)})
	require.NoError(t, err)
	require.Equal(t, "", cfg.Health.Address)
}

func TestLoadValidatesResult(t *testing.T) {
	clearEnv(t)
	_, err := Load(LoadOptions{ConfigFile: writeFile(t, minimalFile+
		"bundle_endpoint:\n  profile: https\n")})
	require.EqualError(t, err,
		`config: bundle_endpoint.profile: invalid value "https": use https_spiffe or https_web`)
}

func TestLoadDurationsAndSizes(t *testing.T) {
	clearEnv(t)
	content := minimalFile + `
bundle_endpoint:
  refresh_hint: 90s
authority:
  ca_ttl: 336h
  jwt_key_ttl: 1h30m
  x509_svid_max_ttl: 45m
  publish_lead: 0s
federation:
  min_refresh: 1m
  max_refresh: 2h
  max_bundle_size: 512KiB
  max_redirects: 0
raft:
  apply_timeout: 2500ms
`
	t.Setenv("BUNDLEX_FEDERATION_FETCH_TIMEOUT", "1m15s")
	cfg, err := Load(LoadOptions{
		ConfigFile: writeFile(t, content),
		Flags:      parseFlags(t, "--federation-default-refresh=7m", "--raft-snapshot-retain=9"),
	})
	require.NoError(t, err)
	require.Equal(t, 90*time.Second, cfg.BundleEndpoint.RefreshHint)
	require.Equal(t, 336*time.Hour, cfg.Authority.CATTL)
	require.Equal(t, 90*time.Minute, cfg.Authority.JWTKeyTTL)
	require.Equal(t, 45*time.Minute, cfg.Authority.X509SVIDMaxTTL)
	require.Equal(t, time.Duration(0), cfg.Authority.PublishLead)
	require.Equal(t, 6*time.Minute, cfg.EffectivePublishLead())
	require.Equal(t, time.Minute, cfg.Federation.MinRefresh)
	require.Equal(t, 2*time.Hour, cfg.Federation.MaxRefresh)
	require.Equal(t, 7*time.Minute, cfg.Federation.DefaultRefresh)
	require.Equal(t, 75*time.Second, cfg.Federation.FetchTimeout)
	require.Equal(t, ByteSize(512*1024), cfg.Federation.MaxBundleSize)
	require.Equal(t, 0, cfg.Federation.MaxRedirects)
	require.Equal(t, 2500*time.Millisecond, cfg.Raft.ApplyTimeout)
	require.Equal(t, 9, cfg.Raft.SnapshotRetain)
}

func TestLoadRejectsBadValues(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		envName string
		env     string
		want    string
	}{
		{"bare number duration", "federation:\n  fetch_timeout: 30\n", "", "",
			"config: federation.fetch_timeout: invalid value 30: " +
				"use a Go duration with a unit, such as 30s, 5m or 168h"},
		{"duration without unit env", "", "BUNDLEX_RAFT_APPLY_TIMEOUT", "10",
			`config: raft.apply_timeout: invalid value "10": ` +
				"use a Go duration with a unit, such as 30s, 5m or 168h"},
		{"fraction size", "federation:\n  max_bundle_size: 1.5MiB\n", "", "",
			`config: federation.max_bundle_size: invalid value "1.5MiB": use a whole number ` +
				"of bytes, optionally with a unit B, KB, MB, GB, KiB, MiB or GiB"},
		{"negative size", "federation:\n  max_bundle_size: -5\n", "", "",
			"config: federation.max_bundle_size: invalid value -5: " +
				"use a size of at least 0 bytes"},
		{"integer from text env", "", "BUNDLEX_FEDERATION_MAX_REDIRECTS", "three",
			`config: federation.max_redirects: invalid value "three": ` +
				"use a whole number from 0 to 2147483647"},
		{"negative integer", "raft:\n  snapshot_retain: -2\n", "", "",
			"config: raft.snapshot_retain: invalid value -2: " +
				"use a whole number from 0 to 2147483647"},
		{"number for string", "log_level: 3\n", "", "",
			"config: log_level: invalid value 3: use a string; quote it in YAML"},
		{"list for scalar", "log_level: [debug]\n", "", "",
			"config: log_level: invalid value a list: use a single value, not a list or " +
				"mapping (FILE line 5)"},
		{"scalar for section", "raft: fast\n", "", "",
			`config: raft: invalid value "fast": use a mapping of keys under raft (FILE line 5)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			if tt.envName != "" {
				t.Setenv(tt.envName, tt.env)
			}
			path := writeFile(t, minimalFile+tt.file)
			_, err := Load(LoadOptions{ConfigFile: path})
			require.Error(t, err)
			require.Contains(t, errorLines(err), replaceFile(tt.want, path))
		})
	}
}

func replaceFile(message, path string) string {
	for i := 0; i+4 <= len(message); i++ {
		if message[i:i+4] == "FILE" {
			return message[:i] + path + message[i+4:]
		}
	}
	return message
}

func TestLoadRejectsUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string
	}{
		{"top-level typo", "trust_domian: example.org\n",
			`config: unknown key "trust_domian" in FILE line 5: did you mean "trust_domain"?`},
		{"nested typo", "bundle_endpoint:\n  adress: 127.0.0.1:1\n",
			`config: unknown key "bundle_endpoint.adress" in FILE line 6: ` +
				`did you mean "bundle_endpoint.address"?`},
		{"key in wrong section", "raft:\n  refresh_hint: 5m\n",
			`config: unknown key "raft.refresh_hint" in FILE line 6: ` +
				"see docs/configuration.md for the accepted keys"},
		{"unrelated top-level key", "server: {}\n",
			`config: unknown key "server" in FILE line 5: ` +
				"see docs/configuration.md for the accepted keys"},
		{"relationship field typo",
			"federation:\n  trust_domains:\n    org-b.test:\n      profle: https_web\n",
			`config: unknown key "federation.trust_domains[\"org-b.test\"].profle" in FILE ` +
				`line 8: did you mean "federation.trust_domains[\"org-b.test\"].profile"?`},
		{"trust domains as list", "federation:\n  trust_domains: [org-b.test]\n",
			`config: federation.trust_domains: invalid value a list: use a mapping from ` +
				"trust domain name to relationship (FILE line 6)"},
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

func TestLoadRejectsDuplicateKeys(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, minimalFile+"log_level: debug\nlog_level: warn\n")
	_, err := Load(LoadOptions{ConfigFile: path})
	require.ErrorContains(t, err, "config: parse config file "+path)
	require.ErrorContains(t, err, `mapping key "log_level" already defined at line 5`)
}

func TestLoadMissingFile(t *testing.T) {
	clearEnv(t)
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := Load(LoadOptions{ConfigFile: path})
	require.ErrorContains(t, err, "config: read config file: open "+path)
	require.ErrorContains(t, err, "check the file path")
}

func TestLoadEmptyFile(t *testing.T) {
	clearEnv(t)
	t.Setenv("BUNDLEX_TRUST_DOMAIN", "example.org")
	t.Setenv("BUNDLEX_DATA_DIR", "/data")
	cfg, err := Load(LoadOptions{ConfigFile: writeFile(t, "# nothing yet\n")})
	require.NoError(t, err)
	require.Equal(t, "example.org", cfg.TrustDomain)
}

func TestLoadNullAndEmptyValues(t *testing.T) {
	clearEnv(t)
	content := minimalFile + "health:\n  address: \"\"\ncluster:\n  raft_address:\n" +
		"bundle_endpoint:\n  path: null\n"
	cfg, err := Load(LoadOptions{ConfigFile: writeFile(t, content)})
	require.NoError(t, err)
	require.Equal(t, "", cfg.Health.Address)
	require.Equal(t, DefaultClusterRaftAddress, cfg.Cluster.RaftAddress)
	require.Equal(t, DefaultEndpointPath, cfg.BundleEndpoint.Path)
}

func TestLoadIgnoresOtherFlags(t *testing.T) {
	clearEnv(t)
	flags := pflag.NewFlagSet("server", pflag.ContinueOnError)
	AddFlags(flags)
	flags.String("config", "", "config file")
	flags.Bool("dev", false, "development mode")
	require.NoError(t, flags.Parse([]string{"--config=/etc/bundlex.yaml", "--dev",
		"--trust-domain=example.org", "--data-dir=/data"}))
	cfg, err := Load(LoadOptions{Flags: flags})
	require.NoError(t, err)
	require.Equal(t, "example.org", cfg.TrustDomain)
	require.Equal(t, "/data", cfg.DataDir)
}
