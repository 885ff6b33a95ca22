package e2e

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

// peerHint is the refresh hint the federating nodes publish: short, so that a
// rotation reaches the peer within a test's patience.
const peerHint = 2 * time.Second

// federateSPIFFE creates an https_spiffe relationship on from for to, bootstrapped
// from to's current bundle.
func federateSPIFFE(t *testing.T, from, to *bxNode) {
	t.Helper()
	bootstrap := from.writeFile(to.name+"-bootstrap.json", []byte(to.cli("bundle", "show")))
	from.cli("federation", "create", "--trust-domain", to.trustDomain,
		"--bundle-endpoint-url", to.endpointURL(), "--profile", "https_spiffe",
		"--endpoint-spiffe-id", to.endpointID(), "--bundle-path", bootstrap)
}

// localBundle returns the bundle a node serves as its own.
func localBundle(t *testing.T, n *bxNode) admin.Bundle {
	t.Helper()
	b, err := n.client().LocalBundle(context.Background())
	require.NoError(t, err)
	return b
}

// waitForPeerSequence waits until holder stores owner's bundle at sequence seq,
// fetched from owner's endpoint.
func waitForPeerSequence(t *testing.T, holder, owner *bxNode, seq uint64, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%s to hold %s sequence %d", holder.name, owner.name, seq),
		func() error {
			b, err := holder.client().Bundle(context.Background(), owner.trustDomain)
			if err != nil {
				return err
			}
			if b.Sequence != seq || b.Source != "fetched" {
				return fmt.Errorf("stored sequence %d from %s", b.Sequence, b.Source)
			}
			return nil
		})
}

func TestTwoNodesFederateOverSPIFFE(t *testing.T) {
	orgA := startNode(t, nodeOptions{trustDomain: "org-a.test", refreshHint: peerHint})
	orgB := startNode(t, nodeOptions{trustDomain: "org-b.test", refreshHint: peerHint})
	federateSPIFFE(t, orgA, orgB)
	federateSPIFFE(t, orgB, orgA)

	// Each node ends up holding the other's bundle at the sequence being served.
	waitForPeerSequence(t, orgA, orgB, localBundle(t, orgB).Sequence, time.Minute)
	waitForPeerSequence(t, orgB, orgA, localBundle(t, orgA).Sequence, time.Minute)
	heldByB, err := orgB.client().Bundle(context.Background(), "org-a.test")
	require.NoError(t, err)
	require.JSONEq(t, string(localBundle(t, orgA).Document), string(heldByB.Document))

	// A rotation on org-a reaches org-b within org-a's refresh hint plus 2 seconds.
	before := localBundle(t, orgA)
	rotated := orgA.cli("authority", "rotate", "--output", "json")
	var after admin.Bundle
	require.NoError(t, json.Unmarshal([]byte(rotated), &after))
	require.Equal(t, before.Sequence+1, after.Sequence)
	require.Greater(t, after.X509Keys, before.X509Keys, "rotation publishes the next CA")
	require.Greater(t, after.JWTKeys, before.JWTKeys, "rotation publishes the next JWT key")
	rotatedAt := time.Now()
	waitForPeerSequence(t, orgB, orgA, after.Sequence, peerHint+2*time.Second)
	t.Logf("org-b stored org-a's rotated bundle %s after the rotation", time.Since(rotatedAt))

	// SVIDs signed by org-a's authority verify against org-b's stored copy.
	heldByB, err = orgB.client().Bundle(context.Background(), "org-a.test")
	require.NoError(t, err)
	tdA := spiffeid.RequireTrustDomainFromString("org-a.test")
	stored, err := spiffebundle.Parse(tdA, heldByB.Document)
	require.NoError(t, err)

	x509SVID, err := orgA.client().MintX509SVID(context.Background(),
		admin.MintX509SVIDRequest{SPIFFEID: "spiffe://org-a.test/agents/planner"})
	require.NoError(t, err)
	chain := parseCertificates(t, x509SVID.CertsPEM)
	id, _, err := x509svid.Verify(chain, stored)
	require.NoError(t, err)
	require.Equal(t, "spiffe://org-a.test/agents/planner", id.String())

	jwtSVID, err := orgA.client().MintJWTSVID(context.Background(), admin.MintJWTSVIDRequest{
		SPIFFEID: "spiffe://org-a.test/agents/planner", Audience: []string{"org-b"},
	})
	require.NoError(t, err)
	parsed, err := jwtsvid.ParseAndValidate(jwtSVID.Token, stored, []string{"org-b"})
	require.NoError(t, err)
	require.Equal(t, "spiffe://org-a.test/agents/planner", parsed.ID.String())

	// federation show prints the whole status of the relationship.
	show := orgB.cli("federation", "show", "--trust-domain", "org-a.test")
	require.Contains(t, show, "org-a.test")
	require.Contains(t, show, fmt.Sprint(after.Sequence))
}

func parseCertificates(t *testing.T, data string) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	rest := []byte(data)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		certs = append(certs, cert)
	}
	require.NotEmpty(t, certs)
	return certs
}

func TestRestartAfterKillKeepsState(t *testing.T) {
	orgA := startNode(t, nodeOptions{trustDomain: "org-a.test", refreshHint: peerHint})
	orgB := startNode(t, nodeOptions{trustDomain: "org-b.test", refreshHint: peerHint})
	federateSPIFFE(t, orgB, orgA)
	waitForPeerSequence(t, orgB, orgA, localBundle(t, orgA).Sequence, time.Minute)
	orgB.cli("authority", "rotate")

	ctx := context.Background()
	relsBefore, err := orgB.client().Relationships(ctx)
	require.NoError(t, err)
	bundlesBefore, err := orgB.client().Bundles(ctx)
	require.NoError(t, err)
	localBefore := localBundle(t, orgB)

	orgB.kill9()
	orgB.restart()

	relsAfter, err := orgB.client().Relationships(ctx)
	require.NoError(t, err)
	require.Len(t, relsAfter, len(relsBefore))
	require.Equal(t, relsBefore[0].BundleEndpointURL, relsAfter[0].BundleEndpointURL)
	require.Equal(t, relsBefore[0].EndpointSPIFFEID, relsAfter[0].EndpointSPIFFEID)
	bundlesAfter, err := orgB.client().Bundles(ctx)
	require.NoError(t, err)
	require.Len(t, bundlesAfter, len(bundlesBefore))
	require.Equal(t, bundlesBefore[0].Sequence, bundlesAfter[0].Sequence)
	require.JSONEq(t, string(bundlesBefore[0].Document), string(bundlesAfter[0].Document))
	localAfter := localBundle(t, orgB)
	require.Equal(t, localBefore.Sequence, localAfter.Sequence)
	require.JSONEq(t, string(localBefore.Document), string(localAfter.Document))
}

func TestPeerDownKeepsBundleAndRecovers(t *testing.T) {
	orgA := startNode(t, nodeOptions{trustDomain: "org-a.test", refreshHint: peerHint})
	orgB := startNode(t, nodeOptions{trustDomain: "org-b.test", refreshHint: peerHint})
	federateSPIFFE(t, orgB, orgA)
	seq := localBundle(t, orgA).Sequence
	waitForPeerSequence(t, orgB, orgA, seq, time.Minute)

	orgA.stop()
	ctx := context.Background()
	waitFor(t, time.Minute, "org-b to report the failing peer", func() error {
		rel, err := orgB.client().Relationship(ctx, "org-a.test")
		if err != nil {
			return err
		}
		if rel.Status.LastError == "" {
			return fmt.Errorf("no error recorded yet")
		}
		return nil
	})
	rel, err := orgB.client().Relationship(ctx, "org-a.test")
	require.NoError(t, err)
	require.True(t, rel.Status.HasBundle, "the stored bundle stays while the peer is down")
	require.Equal(t, seq, rel.Status.StoredSequence)
	require.Positive(t, rel.Status.ConsecutiveFailures)
	show := orgB.cli("federation", "show", "--trust-domain", "org-a.test")
	require.Contains(t, show, rel.Status.LastError)

	orgA.restart()
	waitFor(t, time.Minute, "org-b to fetch again after the peer is back", func() error {
		rel, err := orgB.client().Relationship(ctx, "org-a.test")
		if err != nil {
			return err
		}
		if rel.Status.LastError != "" || rel.Status.ConsecutiveFailures != 0 {
			return fmt.Errorf("still failing: %s", rel.Status.LastError)
		}
		return nil
	})
}
