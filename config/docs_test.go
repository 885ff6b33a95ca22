package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// readDocs returns docs/configuration.md, which lists every key.
func readDocs(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	require.NoError(t, err)
	return string(data)
}

func TestDocsListEveryKey(t *testing.T) {
	docs := readDocs(t)
	for _, key := range Keys() {
		t.Run(key, func(t *testing.T) {
			row := ""
			for _, line := range strings.Split(docs, "\n") {
				if strings.HasPrefix(line, "| `"+key+"` |") {
					row = line
				}
			}
			require.NotEmpty(t, row, "docs/configuration.md has no table row for %s", key)
			require.Contains(t, row, "`"+EnvName(key)+"`")
			require.Contains(t, row, "`--"+FlagName(key)+"`")
		})
	}
	for field := range relationshipFields {
		require.Contains(t, docs, "| `"+field+"` |", "relationship key %s undocumented", field)
	}
	for field := range relationshipListFields {
		require.Contains(t, docs, "| `"+field+"` |", "relationship key %s undocumented", field)
	}
}

// TestDocsExampleLoads loads the complete example of the docs, which sets every
// key to its default, and checks that it matches Default.
func TestDocsExampleLoads(t *testing.T) {
	clearEnv(t)
	docs := readDocs(t)
	start := strings.LastIndex(docs, "```yaml\n")
	require.NotEqual(t, -1, start)
	example := docs[start+len("```yaml\n"):]
	example = example[:strings.Index(example, "```")]
	// Load reads the files of the static relationships, so point them at real ones.
	bundlePath, caPath := writeBundleFile(t), writeCAFile(t)
	require.Contains(t, example, "/etc/bundlex/org-b.json")
	require.Contains(t, example, "/etc/bundlex/org-c-ca.pem")
	example = strings.NewReplacer("/etc/bundlex/org-b.json", bundlePath,
		"/etc/bundlex/org-c-ca.pem", caPath).Replace(example)

	cfg, err := Load(LoadOptions{ConfigFile: writeFile(t, example)})
	require.NoError(t, err)

	want := validConfig()
	want.Cluster.RaftAdvertiseAddress = want.Cluster.RaftAddress
	want.Cluster.GossipAdvertiseAddress = want.Cluster.GossipAddress
	require.Len(t, cfg.Federation.TrustDomains, 3)
	require.Equal(t, bundlePath, cfg.Federation.TrustDomains["org-b.test"].BundlePath)
	require.Equal(t, ProfileHTTPSWeb, cfg.Federation.TrustDomains["org-c.test"].Profile)
	require.Contains(t, cfg.Federation.TrustDomains, "eu.org-d.test")
	cfg.Federation.TrustDomains = want.Federation.TrustDomains
	require.Equal(t, want, cfg)
}
