package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestListenerLimitDefaults(t *testing.T) {
	cfg := Default()
	require.Equal(t, 10*time.Second, cfg.BundleEndpoint.ReadTimeout)
	require.Equal(t, 2048, cfg.BundleEndpoint.MaxConnections)
	require.Equal(t, 10*time.Second, cfg.Consumers.VerifyReadTimeout)
	require.Equal(t, 2048, cfg.Consumers.VerifyMaxConnections)
	require.Equal(t, 10*time.Second, cfg.Health.ReadTimeout)
	require.Equal(t, 256, cfg.Health.MaxConnections)
	require.NoError(t, validConfig().Validate())
}

func TestValidateListenerLimits(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		want   string
	}{
		{"endpoint read timeout zero", func(c *Config) { c.BundleEndpoint.ReadTimeout = 0 },
			"config: bundle_endpoint.read_timeout: invalid value 0s: use a duration from " +
				"1s to 10m0s, such as 10s"},
		{"endpoint read timeout too short",
			func(c *Config) { c.BundleEndpoint.ReadTimeout = 500 * time.Millisecond },
			"config: bundle_endpoint.read_timeout: invalid value 500ms: use a duration " +
				"from 1s to 10m0s, such as 10s"},
		{"endpoint read timeout too long",
			func(c *Config) { c.BundleEndpoint.ReadTimeout = 11 * time.Minute },
			"config: bundle_endpoint.read_timeout: invalid value 11m0s: use a duration " +
				"from 1s to 10m0s, such as 10s"},
		{"endpoint max connections zero",
			func(c *Config) { c.BundleEndpoint.MaxConnections = 0 },
			"config: bundle_endpoint.max_connections: invalid value 0: use at least 1, " +
				"such as 2048"},
		{"verify read timeout negative",
			func(c *Config) { c.Consumers.VerifyReadTimeout = -time.Second },
			"config: verify.read_timeout: invalid value -1s: use a duration from 1s to " +
				"10m0s, such as 10s"},
		{"verify max connections negative",
			func(c *Config) { c.Consumers.VerifyMaxConnections = -1 },
			"config: verify.max_connections: invalid value -1: use at least 1, such as 2048"},
		{"health read timeout too long",
			func(c *Config) { c.Health.ReadTimeout = time.Hour },
			"config: health.read_timeout: invalid value 1h0m0s: use a duration from 1s " +
				"to 10m0s, such as 10s"},
		{"health max connections zero", func(c *Config) { c.Health.MaxConnections = 0 },
			"config: health.max_connections: invalid value 0: use at least 1, such as 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.modify(cfg)
			require.Equal(t, []string{tt.want}, errorLines(cfg.Validate()))
		})
	}
}

func TestValidateListenerLimitBounds(t *testing.T) {
	cfg := validConfig()
	cfg.BundleEndpoint.ReadTimeout = MinReadTimeout
	cfg.BundleEndpoint.MaxConnections = 1
	cfg.Consumers.VerifyReadTimeout = MaxReadTimeout
	cfg.Consumers.VerifyMaxConnections = 1
	cfg.Health.ReadTimeout = MinReadTimeout
	cfg.Health.MaxConnections = 1
	require.NoError(t, cfg.Validate())
}

func TestLoadListenerLimits(t *testing.T) {
	clearEnv(t)
	content := minimalFile + "bundle_endpoint:\n  read_timeout: 5s\n  max_connections: 100\n" +
		"verify:\n  read_timeout: 20s\nhealth:\n  max_connections: 16\n"
	t.Setenv("BUNDLEX_VERIFY_MAX_CONNECTIONS", "300")
	t.Setenv("BUNDLEX_HEALTH_READ_TIMEOUT", "3s")
	cfg, err := Load(LoadOptions{
		ConfigFile: writeFile(t, content),
		Flags:      parseFlags(t, "--bundle-endpoint-max-connections=200"),
	})
	require.NoError(t, err)
	require.Equal(t, 5*time.Second, cfg.BundleEndpoint.ReadTimeout)
	require.Equal(t, 200, cfg.BundleEndpoint.MaxConnections)
	require.Equal(t, 20*time.Second, cfg.Consumers.VerifyReadTimeout)
	require.Equal(t, 300, cfg.Consumers.VerifyMaxConnections)
	require.Equal(t, 3*time.Second, cfg.Health.ReadTimeout)
	require.Equal(t, 16, cfg.Health.MaxConnections)
}
