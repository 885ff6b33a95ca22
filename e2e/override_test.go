package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

// setBundle runs `bundle set` for td with the file at path and returns the
// stored bundle it prints.
func setBundle(t *testing.T, n *bxNode, td, path string) admin.Bundle {
	t.Helper()
	var b admin.Bundle
	out := n.cli("bundle", "set", "--id", td, "--path", path, "--output", "json")
	require.NoError(t, json.Unmarshal([]byte(out), &b), out)
	return b
}

// bundleTrustDomains returns the trust domains of `bundle list --output json`.
func bundleTrustDomains(t *testing.T, n *bxNode) []string {
	t.Helper()
	var bundles []admin.Bundle
	out := n.cli("bundle", "list", "--output", "json")
	require.NoError(t, json.Unmarshal([]byte(out), &bundles), out)
	names := []string{}
	for _, b := range bundles {
		names = append(names, b.TrustDomain)
	}
	return names
}

// waitForRequests waits until peer has received at least count requests.
func waitForRequests(t *testing.T, peer *fakePeer, count int64, description string) {
	t.Helper()
	waitFor(t, time.Minute, description, func() error {
		if got := peer.requestCount(); got < count {
			return fmt.Errorf("%d of %d requests", got, count)
		}
		return nil
	})
}

// TestOperatorOverrideAndDelete covers the operator's bundle commands: a bundle
// for a trust domain without a relationship, an override of a fetched bundle that
// is kept until the next refresh (SPIFFE Federation 4.2), and the end of a
// relationship, which deletes its bundle and stops polling (SPIFFE Federation 6.3).
func TestOperatorOverrideAndDelete(t *testing.T) {
	webCA := newTestCA(t, "peers web CA")
	authorityB := newTestCA(t, "org-b authority")
	other := newTestCA(t, "operator authority")
	// org-b publishes a long hint, so no scheduled fetch replaces the override
	// before the test requests a refresh.
	peerB := startFakePeer(t, webCA)
	peerB.serve(http.StatusOK, bundleDocument(t, "org-b.test", 10, 300*time.Second, authorityB))
	// org-c is fetched every second for the whole test; its requests show that the
	// poller keeps running after org-b's relationship is deleted.
	peerC := startFakePeer(t, webCA)
	peerC.serve(http.StatusOK, bundleDocument(t, "org-c.test", 1, time.Second,
		newTestCA(t, "org-c authority")))
	node := startNode(t, nodeOptions{trustDomain: "org-a.test"})
	caPath := node.writeFile("peers-ca.pem", webCA.certPEM)
	createWebRelationship(node, "org-b.test", peerB.url(), caPath)
	createWebRelationship(node, "org-c.test", peerC.url(), caPath)
	waitForFetched(t, node, "org-b.test", 10)
	waitForFetched(t, node, "org-c.test", 1)

	// A trust domain without a relationship: set, list, delete.
	xPath := node.writeFile("org-x.json", bundleDocument(t, "org-x.test", 7, 0, other))
	set := setBundle(t, node, "org-x.test", xPath)
	require.Equal(t, "operator", set.Source)
	require.Equal(t, uint64(7), set.Sequence)
	require.ElementsMatch(t, []string{"org-b.test", "org-c.test", "org-x.test"},
		bundleTrustDomains(t, node))
	listed := storedBundle(t, node, "org-x.test")
	require.Equal(t, "operator", listed.Source)
	require.Equal(t, string(other.certPEM), listed.PEM)
	node.cli("bundle", "delete", "--id", "org-x.test")
	require.ElementsMatch(t, []string{"org-b.test", "org-c.test"}, bundleTrustDomains(t, node))
	_, stderr, err := node.cliResult("bundle", "list", "--id", "org-x.test")
	require.Error(t, err)
	require.Contains(t, stderr, "no bundle is stored for trust domain org-x.test")

	// A trust domain with a relationship: the override, even with a lower
	// sequence, is kept until the next refresh stores the fetched bundle again.
	overridePath := node.writeFile("org-b-override.json",
		bundleDocument(t, "org-b.test", 3, 0, other))
	set = setBundle(t, node, "org-b.test", overridePath)
	require.Equal(t, "operator", set.Source)
	require.Equal(t, uint64(3), set.Sequence)
	overridden := storedBundle(t, node, "org-b.test")
	require.Equal(t, "operator", overridden.Source)
	require.Equal(t, string(other.certPEM), overridden.PEM)
	require.Equal(t, "operator", showRelationship(t, node, "org-b.test").Status.BundleSource)
	node.cli("federation", "refresh", "--trust-domain", "org-b.test")
	refreshed := storedBundle(t, node, "org-b.test")
	require.Equal(t, "fetched", refreshed.Source)
	require.Equal(t, uint64(10), refreshed.Sequence)
	require.Equal(t, string(authorityB.certPEM), refreshed.PEM)

	// A relationship's bundle goes only with the relationship.
	_, stderr, err = node.cliResult("bundle", "delete", "--id", "org-b.test")
	require.Error(t, err)
	require.Contains(t, stderr, "federation delete --trust-domain org-b.test")
	require.Equal(t, uint64(10), storedBundle(t, node, "org-b.test").Sequence)

	// With a one-second hint, org-b is polled continuously until the delete.
	peerB.serve(http.StatusOK, bundleDocument(t, "org-b.test", 11, time.Second, authorityB))
	node.cli("federation", "refresh", "--trust-domain", "org-b.test")
	waitForRequests(t, peerB, peerB.requestCount()+3, "org-b to be polled every second")
	node.cli("federation", "delete", "--trust-domain", "org-b.test")
	atDelete := peerB.requestCount()
	require.ElementsMatch(t, []string{"org-c.test"}, bundleTrustDomains(t, node))
	_, stderr, err = node.cliResult("federation", "show", "--trust-domain", "org-b.test")
	require.Error(t, err)
	require.Contains(t, stderr, "no federation relationship with trust domain org-b.test")

	// A fetch that had started before the delete may still reach the peer. After
	// that, org-c's next four fetches, one second apart, pass without a request
	// for org-b.
	waitForRequests(t, peerC, peerC.requestCount()+2, "org-c to be polled twice")
	settled := peerB.requestCount()
	require.LessOrEqual(t, settled, atDelete+1, "org-b was polled after the delete")
	waitForRequests(t, peerC, peerC.requestCount()+4, "org-c to be polled four times")
	require.Equal(t, settled, peerB.requestCount(), "org-b was polled after the delete")
}
