package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// webRelationshipFile is minimalFile with one https_web relationship with
// org-a.test; extra is appended to the relationship's keys.
func webRelationshipFile(extra string) string {
	return minimalFile + `
federation:
  trust_domains:
    org-a.test:
      bundle_endpoint_url: https://org-a.test/
      profile: https_web
` + extra
}

func TestLoadRejectsStaticPrefixes(t *testing.T) {
	const key = `config: federation.trust_domains["org-a.test"].allowed_id_prefixes: `
	tests := []struct {
		name  string
		extra string
		want  []string
	}{
		{"prefix of other domain", "      allowed_id_prefixes: spiffe://org-b.test/x\n",
			[]string{key + `invalid value "spiffe://org-b.test/x": it is not in trust ` +
				"domain org-a.test; start it with spiffe://org-a.test/"}},
		{"empty segment", "      allowed_id_prefixes: spiffe://org-a.test/a//b\n",
			[]string{key + `invalid value "spiffe://org-a.test/a//b": path cannot contain ` +
				"empty segments; use a SPIFFE ID of org-a.test, optionally ending in /, such " +
				"as spiffe://org-a.test/agents/"}},
		{"every bad prefix of a list",
			"      allowed_id_prefixes: [\"spiffe://org-a.test/a?b\", spiffe://org-a.test/ok, " +
				"spiffe://org-a.test/./c]\n",
			[]string{
				key + `invalid value "spiffe://org-a.test/a?b": path segment characters are ` +
					"limited to letters, numbers, dots, dashes, and underscores; use a SPIFFE " +
					"ID of org-a.test, optionally ending in /, such as spiffe://org-a.test/agents/",
				key + `invalid value "spiffe://org-a.test/./c": path cannot contain dot ` +
					"segments; use a SPIFFE ID of org-a.test, optionally ending in /, such as " +
					"spiffe://org-a.test/agents/"}},
		{"empty list entry", "      allowed_id_prefixes: [spiffe://org-a.test/a, \"\"]\n",
			[]string{key + `invalid value "spiffe://org-a.test/a,": use comma-separated ` +
				"values without empty entries, or a YAML list (FILE line 11)"}},
		{"empty string", "      allowed_id_prefixes: \"\"\n",
			[]string{key + `invalid value "": remove the key to allow every SPIFFE ID ` +
				"of the trust domain, or list the allowed prefixes (FILE line 11)"}},
		{"mapping", "      allowed_id_prefixes: {a: b}\n",
			[]string{key + "invalid value a mapping: use a list of strings (FILE line 11)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			path := writeFile(t, webRelationshipFile(tt.extra))
			_, err := Load(LoadOptions{ConfigFile: path})
			require.Error(t, err)
			want := make([]string, len(tt.want))
			for i, line := range tt.want {
				want[i] = strings.ReplaceAll(line, "FILE", path)
			}
			require.Equal(t, want, errorLines(err))
		})
	}
}

func TestLoadStaticPrefixForms(t *testing.T) {
	tests := []struct {
		name  string
		extra string
	}{
		{"comma-separated string",
			"      allowed_id_prefixes: spiffe://org-a.test/a/, spiffe://org-a.test/b\n"},
		{"YAML list",
			"      allowed_id_prefixes: [spiffe://org-a.test/a/, spiffe://org-a.test/b]\n"},
		{"block list", "      allowed_id_prefixes:\n        - spiffe://org-a.test/a/\n" +
			"        - spiffe://org-a.test/b\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			cfg, err := Load(LoadOptions{ConfigFile: writeFile(t, webRelationshipFile(tt.extra))})
			require.NoError(t, err)
			require.Equal(t, []string{"spiffe://org-a.test/a/", "spiffe://org-a.test/b"},
				cfg.Federation.TrustDomains["org-a.test"].AllowedIDPrefixes)
		})
	}
}

func TestLoadStaticPrefixListFromEnv(t *testing.T) {
	clearEnv(t)
	t.Setenv("BUNDLEX_FEDERATION_TRUST_DOMAINS", `{"org-e.test": {"bundle_endpoint_url": `+
		`"https://org-e.test/", "profile": "https_web", "allowed_id_prefixes": `+
		`["spiffe://org-e.test/a", "spiffe://org-e.test/b/"]}}`)
	cfg, err := Load(LoadOptions{ConfigFile: writeFile(t, minimalFile)})
	require.NoError(t, err)
	require.Equal(t, []string{"spiffe://org-e.test/a", "spiffe://org-e.test/b/"},
		cfg.Federation.TrustDomains["org-e.test"].AllowedIDPrefixes)
}

func TestLoadRejectsMintPrefixes(t *testing.T) {
	const key = "config: authority.mint_allowed_id_prefixes: "
	clearEnv(t)
	content := minimalFile + `
authority:
  mint_allowed_id_prefixes: [spiffe://example.org/a//b, "spiffe://example.org/a?b",
    spiffe://org-c.test/a, spiffe://example.org/ok/]
`
	_, err := Load(LoadOptions{ConfigFile: writeFile(t, content)})
	require.Equal(t, []string{
		key + `invalid value "spiffe://example.org/a//b": path cannot contain empty ` +
			"segments; use a SPIFFE ID of example.org, optionally ending in /, such as " +
			"spiffe://example.org/agents/",
		key + `invalid value "spiffe://example.org/a?b": path segment characters are ` +
			"limited to letters, numbers, dots, dashes, and underscores; use a SPIFFE ID of " +
			"example.org, optionally ending in /, such as spiffe://example.org/agents/",
		key + `invalid value "spiffe://org-c.test/a": it is not in trust domain ` +
			"example.org; start it with spiffe://example.org/",
	}, errorLines(err))
}

func TestLoadMintPrefixesWithoutDuplicates(t *testing.T) {
	clearEnv(t)
	t.Setenv("BUNDLEX_AUTHORITY_MINT_ALLOWED_ID_PREFIXES",
		"spiffe://example.org/a/,spiffe://example.org/b,spiffe://example.org/a/")
	cfg, err := Load(LoadOptions{ConfigFile: writeFile(t, minimalFile)})
	require.NoError(t, err)
	require.Equal(t, []string{"spiffe://example.org/a/", "spiffe://example.org/b"},
		cfg.Authority.MintAllowedIDPrefixes)
}

func TestLoadChecksRelationshipFiles(t *testing.T) {
	const base = `config: federation.trust_domains["org-a.test"].`
	missing := t.TempDir() + "/missing.json"
	notBundle := writeTempFile(t, "bundle.json", `{"keys": "none"}`)
	notPEM := writeTempFile(t, "ca.pem", "not a certificate")
	spiffe := "      profile: https_spiffe\n      endpoint_spiffe_id: spiffe://org-a.test/bundlex\n"
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"missing bootstrap bundle", spiffe + "      bundle_path: " + missing + "\n",
			base + `bundle_path: invalid value "` + missing + `": no such file or directory; ` +
				"check the path and that the node's user may read the file"},
		{"invalid bootstrap bundle", spiffe + "      bundle_path: " + notBundle + "\n",
			base + `bundle_path: invalid value "` + notBundle + `": bootstrap bundle: `},
		{"CA file without certificate", "      ca_file: " + notPEM + "\n",
			base + `ca_file: invalid value "` + notPEM + `": CA file for org-a.test: no PEM ` +
				"certificate found; use a PEM file of CA certificates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			content := minimalFile + `
federation:
  trust_domains:
    org-a.test:
      bundle_endpoint_url: https://org-a.test/
` + tt.content
			if !strings.Contains(tt.content, "profile:") {
				content += "      profile: https_web\n"
			}
			_, err := Load(LoadOptions{ConfigFile: writeFile(t, content)})
			require.Error(t, err)
			lines := errorLines(err)
			require.Len(t, lines, 1, err.Error())
			require.True(t, strings.HasPrefix(lines[0], tt.want), lines[0])
		})
	}
}
