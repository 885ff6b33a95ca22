package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// clearEnv unsets every variable Load reads or rejects and restores them after
// the test.
func clearEnv(t *testing.T) {
	t.Helper()
	keys := Keys()
	for oldKey := range renamedKeys {
		keys = append(keys, oldKey)
	}
	for _, key := range keys {
		name := EnvName(key)
		if _, ok := os.LookupEnv(name); ok {
			t.Setenv(name, "")
			require.NoError(t, os.Unsetenv(name))
		}
	}
}

// writeFile writes a YAML config file into a fresh temporary directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bundlex.yaml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// parseFlags defines the flags with AddFlags and parses args.
func parseFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	require.NoError(t, fs.Parse(args))
	return fs
}

// validConfig returns a configuration that passes Validate.
func validConfig() *Config {
	cfg := Default()
	cfg.TrustDomain = "example.org"
	cfg.DataDir = "/var/lib/bundlex"
	cfg.NodeName = "node-1"
	cfg.FillDerived()
	return cfg
}

// errorLines splits a joined error into its messages.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}
