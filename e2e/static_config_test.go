package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStaticRelationshipFromConfigFile configures a relationship in the node's
// file under federation.trust_domains, keyed by a dotted trust domain name. The
// node fetches the peer, refuses to delete the relationship through the CLI, and
// drops it with its bundle once the file no longer lists it.
func TestStaticRelationshipFromConfigFile(t *testing.T) {
	orgB := startNode(t, nodeOptions{trustDomain: "org-b.test", refreshHint: peerHint})
	bootstrap := writeTestFile(t, t.TempDir(), "org-b.json", []byte(orgB.cli("bundle", "show")))
	static := fmt.Sprintf(`  trust_domains:
    org-b.test:
      bundle_endpoint_url: %s
      profile: https_spiffe
      endpoint_spiffe_id: %s
      bundle_path: %s
`, orgB.endpointURL(), orgB.endpointID(), bootstrap)
	orgA := startNode(t, nodeOptions{trustDomain: "org-a.test", extraYAML: static})

	waitForPeerSequence(t, orgA, orgB, localBundle(t, orgB).Sequence, time.Minute)
	rel := showRelationship(t, orgA, "org-b.test")
	require.True(t, rel.Static)
	require.Equal(t, orgB.endpointURL(), rel.BundleEndpointURL)
	require.Equal(t, "https_spiffe", rel.Profile)
	require.Equal(t, orgB.endpointID(), rel.EndpointSPIFFEID)

	_, stderr, err := orgA.cliResult("federation", "delete", "--trust-domain", "org-b.test")
	require.Error(t, err)
	require.Contains(t, stderr, "the relationship with org-b.test is defined in the "+
		"configuration file; remove it there")
	require.True(t, showRelationship(t, orgA, "org-b.test").Static)
	require.Equal(t, "fetched", storedBundle(t, orgA, "org-b.test").Source)

	config, err := os.ReadFile(orgA.configPath)
	require.NoError(t, err)
	require.Contains(t, string(config), static)
	withoutStatic := strings.Replace(string(config), static, "", 1)
	require.NoError(t, os.WriteFile(orgA.configPath, []byte(withoutStatic), 0o600))
	orgA.stop()
	orgA.restart()

	// NOTE: the node reports ready before the new leader has synced the static
	// relationships with the file, so the removed one may still show for a moment.
	waitFor(t, 30*time.Second, "the removed relationship to be deleted", func() error {
		rels, err := orgA.client().Relationships(context.Background())
		if err != nil {
			return err
		}
		if len(rels) != 0 {
			return fmt.Errorf("%d relationships stored", len(rels))
		}
		return nil
	})
	bundles, relationships := storedState(t, orgA)
	require.JSONEq(t, "[]", relationships)
	require.JSONEq(t, "[]", bundles)
	_, err = orgA.client().Relationship(context.Background(), "org-b.test")
	require.ErrorContains(t, err, "no federation relationship with trust domain org-b.test")
	_, stderr, err = orgA.cliResult("bundle", "list", "--id", "org-b.test")
	require.Error(t, err)
	require.Contains(t, stderr, "no bundle is stored for trust domain org-b.test")
	require.Contains(t, orgA.logs(), "deleting static relationship removed from the configuration")
}
