package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

const (
	// peerTrustDomain is the trust domain of the single-node federation peer.
	peerTrustDomain = "peer.test"
	// peerFetchTimeout bounds the wait for a bundle change to reach the other
	// side: a few refresh hints of clusterRefreshHint, plus an election.
	peerFetchTimeout = 30 * time.Second
)

// A single-node bundlex of another trust domain federates with the cluster in
// both directions. After the cluster's leader is killed, the new leader polls
// the peer, and a rotation on the new leader reaches the peer through the
// endpoint of a node that stayed up.
func TestDockerClusterFederationPeer(t *testing.T) {
	c := startDockerCluster(t, 3, dockerTrustDomain)
	peer := startDockerNode(t, c.network, dockerNodeSpec{trustDomain: peerTrustDomain,
		name: "peer", bootstrapExpect: 1}, nil)
	peer.WaitHealthy(dockerReadyTimeout)
	leader := c.leader()
	followers := c.others(leader)
	endpointNode := followers[0]
	sampler := startSequenceSampler(t, append([]*dockerNode{peer}, c.nodes...),
		peerTrustDomain, dockerTrustDomain)

	// SPIFFE Federation 5.2.2.2: a self-serving https_spiffe endpoint needs a
	// bootstrap bundle, which each side takes from the other's `bundle show`.
	clusterBundle := requireLocalBundle(t, endpointNode)
	require.NoError(t, createSPIFFERelationship(peer, c.trustDomain, endpointNode,
		clusterBundle))
	peerBundle := requireLocalBundle(t, peer)
	require.NoError(t, createSPIFFERelationship(followers[1], peerTrustDomain, peer,
		peerBundle), "create the relationship through a follower, which forwards it")

	waitForStoredSequence(t, peer, c.trustDomain, clusterBundle.Sequence)
	for _, n := range c.nodes {
		waitForStoredSequence(t, n, peerTrustDomain, peerBundle.Sequence)
	}
	sampler.waitSampled(t, peerTrustDomain, c.nodes...)
	sampler.waitSampled(t, c.trustDomain, peer)

	killedAt := time.Now()
	leader.Kill()
	newLeader := c.waitForLeader(leader)
	t.Logf("leader %s killed; %s leads %s later; the peer fetches from %s", leader.alias,
		newLeader.alias, time.Since(killedAt).Round(time.Millisecond), endpointNode.alias)

	// The new leader resumes polling the peer from the replicated status.
	waitFor(t, peerFetchTimeout, "the new leader to fetch from the peer", func() error {
		rel, err := newLeader.admin.Relationship(context.Background(), peerTrustDomain)
		if err != nil {
			return err
		}
		if !rel.Status.LastSuccess.After(killedAt) {
			return fmt.Errorf("last success %s, last error %q", rel.Status.LastSuccess,
				rel.Status.LastError)
		}
		return nil
	})
	rotatedPeer := rotateThroughCLI(t, peer)
	start := time.Now()
	for _, n := range followers {
		waitForStoredSequence(t, n, peerTrustDomain, rotatedPeer.Sequence)
	}
	t.Logf("the cluster fetched the peer's rotated bundle (sequence %d) %s after the "+
		"rotation", rotatedPeer.Sequence, time.Since(start).Round(time.Millisecond))

	rotated := rotateThroughCLI(t, newLeader)
	require.Greater(t, rotated.Sequence, clusterBundle.Sequence)
	start = time.Now()
	waitForStoredSequence(t, peer, c.trustDomain, rotated.Sequence)
	t.Logf("the peer fetched the cluster's rotated bundle (sequence %d) from %s %s after "+
		"the rotation on %s", rotated.Sequence, endpointNode.alias,
		time.Since(start).Round(time.Millisecond), newLeader.alias)
	stored, err := peer.admin.Bundle(context.Background(), c.trustDomain)
	require.NoError(t, err)
	require.JSONEq(t, string(requireLocalBundle(t, endpointNode).Document),
		string(stored.Document), "the peer stores the bundle that the endpoint serves")
	sampler.requireMonotonic(t)
}

// requireLocalBundle returns the bundle that n serves for its own trust domain.
func requireLocalBundle(t *testing.T, n *dockerNode) admin.Bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadTimeout)
	defer cancel()
	b, err := n.admin.LocalBundle(ctx)
	require.NoError(t, err)
	return b
}

// createSPIFFERelationship creates on n an https_spiffe relationship with td,
// served by the endpoint of owner and bootstrapped from bootstrap.
func createSPIFFERelationship(n *dockerNode, td string, owner *dockerNode,
	bootstrap admin.Bundle) error {
	ctx, cancel := context.WithTimeout(context.Background(), clusterWriteTimeout)
	defer cancel()
	_, err := n.admin.CreateRelationship(ctx, admin.RelationshipRequest{
		TrustDomain:       td,
		BundleEndpointURL: containerURL(owner.container, dockerEndpointPort, "/"),
		Profile:           "https_spiffe",
		EndpointSPIFFEID:  "spiffe://" + td + "/bundlex",
		Bootstrap:         string(bootstrap.Document),
		BootstrapFormat:   "spiffe",
	})
	return err
}

// waitForStoredSequence waits until n stores td's bundle at sequence seq or
// higher, fetched from td's endpoint.
func waitForStoredSequence(t *testing.T, n *dockerNode, td string, seq uint64) {
	t.Helper()
	waitFor(t, peerFetchTimeout, fmt.Sprintf("%s to fetch %s sequence %d", n.alias, td, seq),
		func() error {
			ctx, cancel := context.WithTimeout(context.Background(), clusterReadTimeout)
			defer cancel()
			b, err := n.admin.Bundle(ctx, td)
			if err != nil {
				return err
			}
			if b.Sequence < seq || b.Source != "fetched" {
				return fmt.Errorf("stores sequence %d from %s", b.Sequence, b.Source)
			}
			return nil
		})
}

// rotateThroughCLI runs `authority rotate` in n's container and returns the
// local bundle it printed.
func rotateThroughCLI(t *testing.T, n *dockerNode) admin.Bundle {
	t.Helper()
	out, err := n.cliOutput("authority", "rotate", "--output", "json")
	require.NoError(t, err)
	var b admin.Bundle
	require.NoError(t, json.Unmarshal([]byte(out), &b), "authority rotate output: %s", out)
	return b
}
