package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

// fetchServedBundle GETs n's bundle endpoint as a peer would, trusting only
// roots, and parses the response body as a bundle of n's trust domain.
func fetchServedBundle(n *bxNode, roots *x509.CertPool) (*spiffebundle.Bundle, error) {
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
		},
	}
	resp, err := client.Get(n.endpointURL())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("endpoint responded with %s: %s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return nil, fmt.Errorf("endpoint responded with Content-Type %q", ct)
	}
	return spiffebundle.Parse(spiffeid.RequireTrustDomainFromString(n.trustDomain), body)
}

// requireServed checks that b carries exactly the authorities of cas at sequence seq.
func requireServed(t *testing.T, b *spiffebundle.Bundle, seq uint64, cas ...*testCA) {
	t.Helper()
	got, ok := b.SequenceNumber()
	require.True(t, ok, "served bundle has no spiffe_sequence")
	require.Equal(t, seq, got)
	var want, served [][]byte
	for _, ca := range cas {
		want = append(want, ca.cert.Raw)
	}
	for _, cert := range b.X509Authorities() {
		served = append(served, cert.Raw)
	}
	require.ElementsMatch(t, want, served)
	require.Empty(t, b.JWTAuthorities())
}

// TestFileAuthorityPublishesFileBundle runs a node whose keys come from a bundle
// file that another CA writes, behind an https_web endpoint so that no endpoint
// X509-SVID is needed. Each valid change of the file is published with the next
// sequence, and an invalid file keeps the published bundle.
func TestFileAuthorityPublishesFileBundle(t *testing.T) {
	web := newWebEndpoint(t)
	first := newTestCA(t, "org-f authority 1")
	second := newTestCA(t, "org-f authority 2")
	dir := t.TempDir()
	bundlePath := writeTestFile(t, dir, "org-f.json", bundleDocument(t, "org-f.test", 0, 0, first))
	opts := web.nodeOptions("org-f.test")
	opts.extraYAML = fmt.Sprintf("authority:\n  type: file\n  bundle_path: %s\n", bundlePath)
	node := startNode(t, opts)

	served, err := fetchServedBundle(node, web.ca.pool())
	require.NoError(t, err)
	requireServed(t, served, 1, first)

	// The node polls the file every 5 seconds (authority.DefaultFilePollInterval).
	writeTestFile(t, dir, "org-f.json", bundleDocument(t, "org-f.test", 0, 0, first, second))
	waitFor(t, 30*time.Second, "the endpoint to serve sequence 2", func() error {
		served, err = fetchServedBundle(node, web.ca.pool())
		if err != nil {
			return err
		}
		if seq, _ := served.SequenceNumber(); seq != 2 {
			return fmt.Errorf("serving sequence %d", seq)
		}
		return nil
	})
	requireServed(t, served, 2, first, second)

	writeTestFile(t, dir, "org-f.json", []byte("this is not a bundle"))
	waitFor(t, 30*time.Second, "the node to reject the file", func() error {
		for _, line := range strings.Split(node.logs(), "\n") {
			if strings.Contains(line, "level=ERROR") &&
				strings.Contains(line, "authority bundle file rejected") &&
				strings.Contains(line, bundlePath) {
				return nil
			}
		}
		return fmt.Errorf("no error logged yet")
	})
	served, err = fetchServedBundle(node, web.ca.pool())
	require.NoError(t, err)
	requireServed(t, served, 2, first, second)
	local := localBundle(t, node)
	require.Equal(t, uint64(2), local.Sequence)
	require.Equal(t, 2, local.X509Keys)
}
