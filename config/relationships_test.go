package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const relationshipsFile = minimalFile + `
federation:
  min_refresh: 45s
  trust_domains:
    org-b.test:
      bundle_endpoint_url: https://bundle.org-b.test:8443/
      profile: https_spiffe
      endpoint_spiffe_id: spiffe://org-b.test/bundlex
      bundle_path: BUNDLE_PATH
    eu.west.org-c.test:
      bundle_endpoint_url: https://org-c.test/trust/bundle
      profile: https_web
      ca_file: CA_PATH
    org_d.test:
      bundle_endpoint_url: https://bundle.org-b.test:8443/org-d
      profile: https_spiffe
      endpoint_spiffe_id: spiffe://org-b.test/bundlex
      bundle_format: pem
`

// writeRelationshipsFile writes relationshipsFile with real bootstrap bundle
// and CA files and returns the paths of the three files.
func writeRelationshipsFile(t *testing.T) (configPath, bundlePath, caPath string) {
	t.Helper()
	bundlePath, caPath = writeBundleFile(t), writeCAFile(t)
	content := strings.NewReplacer("BUNDLE_PATH", bundlePath, "CA_PATH", caPath).
		Replace(relationshipsFile)
	return writeFile(t, content), bundlePath, caPath
}

func TestLoadDottedTrustDomainNames(t *testing.T) {
	clearEnv(t)
	configPath, bundlePath, caPath := writeRelationshipsFile(t)
	cfg, err := Load(LoadOptions{ConfigFile: configPath})
	require.NoError(t, err)

	require.Equal(t, map[string]Relationship{
		"org-b.test": {
			BundleEndpointURL: "https://bundle.org-b.test:8443/",
			Profile:           ProfileHTTPSSPIFFE,
			EndpointSPIFFEID:  "spiffe://org-b.test/bundlex",
			BundlePath:        bundlePath,
			BundleFormat:      BundleFormatSPIFFE,
		},
		"eu.west.org-c.test": {
			BundleEndpointURL: "https://org-c.test/trust/bundle",
			Profile:           ProfileHTTPSWeb,
			CAFile:            caPath,
			BundleFormat:      BundleFormatSPIFFE,
		},
		"org_d.test": {
			BundleEndpointURL: "https://bundle.org-b.test:8443/org-d",
			Profile:           ProfileHTTPSSPIFFE,
			EndpointSPIFFEID:  "spiffe://org-b.test/bundlex",
			BundleFormat:      BundleFormatPEM,
		},
	}, cfg.Federation.TrustDomains)
	// The sibling key of trust_domains still reaches viper.
	require.Equal(t, "45s", cfg.Federation.MinRefresh.String())
}

func TestLoadKeepsTrustDomainCase(t *testing.T) {
	clearEnv(t)
	content := minimalFile + `
federation:
  trust_domains:
    Org-B.test:
      bundle_endpoint_url: https://org-b.test/
      profile: https_web
`
	_, err := Load(LoadOptions{ConfigFile: writeFile(t, content)})
	require.EqualError(t, err, `config: federation.trust_domains["Org-B.test"]: `+
		`invalid value "Org-B.test": trust domain characters are limited to lowercase `+
		"letters, numbers, dots, dashes, and underscores; use a name such as example.org")
}

func TestLoadRelationshipsFromEnv(t *testing.T) {
	clearEnv(t)
	configPath, _, _ := writeRelationshipsFile(t)
	t.Setenv("BUNDLEX_FEDERATION_TRUST_DOMAINS",
		`{"org-e.test": {"bundle_endpoint_url": "https://org-e.test/", "profile": "https_web"}}`)
	cfg, err := Load(LoadOptions{ConfigFile: configPath})
	require.NoError(t, err)

	// The variable replaces the file's map as a whole.
	require.Equal(t, map[string]Relationship{
		"org-e.test": {
			BundleEndpointURL: "https://org-e.test/",
			Profile:           ProfileHTTPSWeb,
			BundleFormat:      BundleFormatSPIFFE,
		},
	}, cfg.Federation.TrustDomains)
}

func TestLoadRelationshipsEmptyEnvClears(t *testing.T) {
	clearEnv(t)
	configPath, _, _ := writeRelationshipsFile(t)
	t.Setenv("BUNDLEX_FEDERATION_TRUST_DOMAINS", "")
	cfg, err := Load(LoadOptions{ConfigFile: configPath})
	require.NoError(t, err)
	require.Empty(t, cfg.Federation.TrustDomains)
}

func TestLoadRelationshipsFlagBeatsEnv(t *testing.T) {
	clearEnv(t)
	configPath, _, _ := writeRelationshipsFile(t)
	t.Setenv("BUNDLEX_FEDERATION_TRUST_DOMAINS",
		`{"org-e.test": {"bundle_endpoint_url": "https://org-e.test/", "profile": "https_web"}}`)
	flags := parseFlags(t, `--federation-trust-domains={"org-f.test": `+
		`{"bundle_endpoint_url": "https://org-f.test/", "profile": "https_web"}}`)
	cfg, err := Load(LoadOptions{ConfigFile: configPath, Flags: flags})
	require.NoError(t, err)
	require.Equal(t, []string{"org-f.test"}, relationshipNames(cfg))
}

func relationshipNames(cfg *Config) []string {
	var names []string
	for name := range cfg.Federation.TrustDomains {
		names = append(names, name)
	}
	return names
}

func TestLoadRelationshipTextErrors(t *testing.T) {
	tests := []struct {
		name string
		env  string
		want string
	}{
		{"malformed JSON", `{"org-e.test": `,
			"config: parse environment variable BUNDLEX_FEDERATION_TRUST_DOMAINS: " +
				"yaml: line 1: did not find expected node content"},
		{"unknown relationship field", `{"org-e.test": {"url": "https://org-e.test/"}}`,
			`config: unknown key "federation.trust_domains[\"org-e.test\"].url" in ` +
				"environment variable BUNDLEX_FEDERATION_TRUST_DOMAINS: " +
				"see docs/configuration.md for the accepted keys"},
		{"duplicate trust domain",
			`{"org-e.test": {"profile": "https_web"}, "org-e.test": {"profile": "https_web"}}`,
			`config: federation.trust_domains["org-e.test"]: defined twice: keep one entry ` +
				"per trust domain (environment variable BUNDLEX_FEDERATION_TRUST_DOMAINS)"},
		{"relationship not a mapping", `{"org-e.test": "https://org-e.test/"}`,
			`config: federation.trust_domains["org-e.test"]: invalid value "https://org-e.test/": ` +
				"use a mapping with bundle_endpoint_url, profile and the other relationship " +
				"keys (environment variable BUNDLEX_FEDERATION_TRUST_DOMAINS)"},
		{"list for field", `{"org-e.test": {"profile": ["https_web"]}}`,
			`config: federation.trust_domains["org-e.test"].profile: invalid value a list: ` +
				"use a single string (environment variable BUNDLEX_FEDERATION_TRUST_DOMAINS)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("BUNDLEX_FEDERATION_TRUST_DOMAINS", tt.env)
			_, err := Load(LoadOptions{ConfigFile: writeFile(t, minimalFile)})
			require.Error(t, err)
			require.Equal(t, []string{tt.want}, errorLines(err))
		})
	}
}
