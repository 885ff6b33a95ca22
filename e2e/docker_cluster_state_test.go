package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/internal/admin"
)

// numberedTrustDomain is the trust domain that write n of a history sets.
func numberedTrustDomain(n int64) string { return fmt.Sprintf("w-%d.test", n) }

// numberedBundle returns a bundle for numberedTrustDomain(n) with one new
// self-signed CA certificate whose serial number is n, and spiffe_sequence n, so
// that no two writes carry the same content.
func numberedBundle(n int64) (*spiffebundle.Bundle, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(n),
		Subject:               pkix.Name{CommonName: numberedTrustDomain(n)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	td, err := spiffeid.TrustDomainFromString(numberedTrustDomain(n))
	if err != nil {
		return nil, err
	}
	b := spiffebundle.New(td)
	b.AddX509Authority(cert)
	b.SetSequenceNumber(uint64(n))
	return b, nil
}

// setBundle stores b as an operator override through this node, which forwards
// the write to the leader when it is a follower.
func (n *dockerNode) setBundle(ctx context.Context, b *spiffebundle.Bundle) error {
	doc, err := b.Marshal()
	if err != nil {
		return err
	}
	_, err = n.admin.SetBundle(ctx, b.TrustDomain().Name(),
		admin.SetBundleRequest{Format: "spiffe", Data: string(doc)})
	return err
}

// setNumberedBundle writes numberedBundle(num) through this node.
func (n *dockerNode) setNumberedBundle(num int64) error {
	b, err := numberedBundle(num)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterWriteTimeout)
	defer cancel()
	return n.setBundle(ctx, b)
}

// createWebRelationship creates an https_web relationship with td at url.
func (n *dockerNode) createWebRelationship(td, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), clusterWriteTimeout)
	defer cancel()
	_, err := n.admin.CreateRelationship(ctx, admin.RelationshipRequest{
		TrustDomain: td, BundleEndpointURL: url, Profile: "https_web"})
	return err
}

// updateRelationshipURL changes the endpoint URL of the relationship with td.
func (n *dockerNode) updateRelationshipURL(td, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), clusterWriteTimeout)
	defer cancel()
	_, err := n.admin.UpdateRelationship(ctx, td, admin.RelationshipRequest{
		BundleEndpointURL: url})
	return err
}

// bundlesAndRelationships reads the federated bundles and relationships that
// the node stores.
func (n *dockerNode) bundlesAndRelationships() ([]admin.Bundle, []admin.Relationship,
	error) {
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadTimeout)
	defer cancel()
	bundles, err := n.admin.Bundles(ctx)
	if err != nil {
		return nil, nil, err
	}
	rels, err := n.admin.Relationships(ctx)
	return bundles, rels, err
}

// cliOutput runs the bundlex CLI in the node's container and returns stdout,
// with stderr in the error.
func (n *dockerNode) cliOutput(args ...string) (string, error) {
	stdout, stderr, err := n.Exec(args...)
	if err != nil {
		return "", fmt.Errorf("bundlex %s on %s: %w: %s", strings.Join(args, " "), n.alias,
			err, strings.TrimSpace(stderr))
	}
	return stdout, nil
}

// dockerNodeState is a node's replicated state as the CLI prints it, read
// between two equal applied indexes so that no entry was applied in between.
type dockerNodeState struct {
	appliedIndex  uint64
	local         string
	bundles       string
	relationships string
}

// readState reads the state with `bundle show`, `bundle list` and `federation
// list` inside the container, between two `cluster raft` calls.
func (n *dockerNode) readState() (dockerNodeState, error) {
	before, err := n.cliAppliedIndex()
	if err != nil {
		return dockerNodeState{}, err
	}
	local, err := n.cliOutput("bundle", "show", "--output", "json")
	if err != nil {
		return dockerNodeState{}, err
	}
	bundles, err := n.cliOutput("bundle", "list", "--output", "json")
	if err != nil {
		return dockerNodeState{}, err
	}
	rels, err := n.cliOutput("federation", "list", "--output", "json")
	if err != nil {
		return dockerNodeState{}, err
	}
	after, err := n.cliAppliedIndex()
	if err != nil {
		return dockerNodeState{}, err
	}
	if before != after {
		return dockerNodeState{}, fmt.Errorf("%s applied entries %d to %d while it was "+
			"read", n.alias, before+1, after)
	}
	return dockerNodeState{appliedIndex: after, local: local, bundles: bundles,
		relationships: rels}, nil
}

func (n *dockerNode) cliAppliedIndex() (uint64, error) {
	out, err := n.cliOutput("cluster", "raft", "--output", "json")
	if err != nil {
		return 0, err
	}
	var st admin.RaftStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return 0, fmt.Errorf("cluster raft output of %s: %w: %s", n.alias, err, out)
	}
	return st.AppliedIndex, nil
}

// requireConverged waits until every node has applied the same index and prints
// the same bundles and relationships, and returns that state.
func (c *dockerCluster) requireConverged(timeout time.Duration) dockerNodeState {
	c.t.Helper()
	var states []dockerNodeState
	start := time.Now()
	waitFor(c.t, timeout, "every node to hold the same state", func() error {
		states = states[:0]
		for _, n := range c.nodes {
			st, err := n.readState()
			if err != nil {
				return err
			}
			states = append(states, st)
		}
		for i, st := range states[1:] {
			other := c.nodes[i+1].alias
			switch {
			case st.appliedIndex != states[0].appliedIndex:
				return fmt.Errorf("%s applied index %d, %s applied index %d",
					c.nodes[0].alias, states[0].appliedIndex, other, st.appliedIndex)
			case st.local != states[0].local:
				return fmt.Errorf("%s and %s serve different local bundles", c.nodes[0].alias,
					other)
			case st.bundles != states[0].bundles:
				return fmt.Errorf("%s and %s list different bundles", c.nodes[0].alias, other)
			case st.relationships != states[0].relationships:
				return fmt.Errorf("%s and %s list different relationships", c.nodes[0].alias,
					other)
			}
		}
		return nil
	})
	c.t.Logf("all %d nodes converged on applied index %d (%d bytes of bundles, %d of "+
		"relationships) within %s", len(c.nodes), states[0].appliedIndex,
		len(states[0].bundles), len(states[0].relationships),
		time.Since(start).Round(time.Millisecond))
	return states[0]
}

// adminResponse is an admin API response with the headers that the client in
// internal/admin does not return.
type adminResponse struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
}

// adminGet sends GET path to the node's admin socket.
func (n *dockerNode) adminGet(path string) (adminResponse, error) {
	client := &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", n.socket)
			},
		},
		Timeout: clusterWriteTimeout,
	}
	defer client.CloseIdleConnections()
	start := time.Now()
	resp, err := client.Get("http://bundlex-admin" + path)
	if err != nil {
		return adminResponse{}, fmt.Errorf("GET %s on %s: %w", path, n.alias, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return adminResponse{status: resp.StatusCode, header: resp.Header, body: body,
		took: time.Since(start)}, err
}
