package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/require"
)

// TestSPIREInterop federates a bundlex node with SPIRE Server 1.13.3 in both
// directions over https_spiffe and verifies SPIRE-minted SVIDs against bundlex's
// stored copy of SPIRE's bundle.
func TestSPIREInterop(t *testing.T) {
	spire := startSPIRE(t, SPIREOptions{TrustDomain: "spire.test"})
	node := startNode(t, nodeOptions{trustDomain: "org-a.test", refreshHint: peerHint})
	ctx := context.Background()

	// bundlex fetches SPIRE's bundle, bootstrapped from `bundle show -format spiffe`.
	spireBundlePath := node.writeFile("spire-bundle.json", spire.BundleSPIFFE(t))
	node.cli("federation", "create", "--trust-domain", "spire.test",
		"--bundle-endpoint-url", spire.EndpointURL(), "--profile", "https_spiffe",
		"--endpoint-spiffe-id", spire.EndpointID().String(), "--bundle-path", spireBundlePath)
	waitFor(t, time.Minute, "bundlex to fetch SPIRE's bundle", func() error {
		b, err := node.client().Bundle(ctx, "spire.test")
		if err != nil {
			return err
		}
		if b.Source != "fetched" {
			return fmt.Errorf("bundle source is %s", b.Source)
		}
		return nil
	})
	stored, err := node.client().Bundle(ctx, "spire.test")
	require.NoError(t, err)
	tdSPIRE := spiffeid.RequireTrustDomainFromString("spire.test")
	storedBundle, err := spiffebundle.Parse(tdSPIRE, stored.Document)
	require.NoError(t, err)
	served, err := spiffebundle.Parse(tdSPIRE, spire.BundleSPIFFE(t))
	require.NoError(t, err)
	require.True(t, storedBundle.X509Bundle().Equal(served.X509Bundle()))
	require.True(t, storedBundle.JWTBundle().Equal(served.JWTBundle()))

	// SVIDs minted by SPIRE verify against bundlex's stored copy of SPIRE's bundle.
	certsPEM, _ := spire.MintX509(t, "spiffe://spire.test/workload/api", 0)
	id, _, err := x509svid.Verify(parseCertificates(t, string(certsPEM)), storedBundle)
	require.NoError(t, err)
	require.Equal(t, "spiffe://spire.test/workload/api", id.String())
	token := spire.MintJWT(t, "spiffe://spire.test/agents/planner", "org-a")
	jwt, err := jwtsvid.ParseAndValidate(token, storedBundle, []string{"org-a"})
	require.NoError(t, err)
	require.Equal(t, "spiffe://spire.test/agents/planner", jwt.ID.String())

	// SPIRE fetches bundlex's bundle, bootstrapped from `bundlex bundle show`.
	bundlexBundlePath := filepath.Join(t.TempDir(), "org-a.json")
	require.NoError(t, os.WriteFile(bundlexBundlePath, []byte(node.cli("bundle", "show")), 0o600))
	spire.FederationCreate(t, "org-a.test", node.endpointURL(), "https_spiffe",
		node.endpointID(), bundlexBundlePath)
	spire.FederationRefresh(t, "org-a.test")
	listed, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("org-a.test"),
		spire.BundleList(t, "org-a.test"))
	require.NoError(t, err)
	local := localBundle(t, node)
	ours, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("org-a.test"),
		local.Document)
	require.NoError(t, err)
	require.True(t, listed.X509Bundle().Equal(ours.X509Bundle()),
		"spire-server bundle list shows bundlex's X.509 authorities")
	require.True(t, listed.JWTBundle().Equal(ours.JWTBundle()),
		"spire-server bundle list shows bundlex's JWT authorities")

	// After a bundlex rotation SPIRE picks up the new bundle on refresh.
	node.cli("authority", "rotate")
	spire.FederationRefresh(t, "org-a.test")
	listed, err = spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("org-a.test"),
		spire.BundleList(t, "org-a.test"))
	require.NoError(t, err)
	require.Len(t, listed.X509Authorities(), len(ours.X509Authorities())+1)
}
