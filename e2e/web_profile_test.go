package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// webEndpoint is the certificate of an https_web node from a test CA, in files
// that the test can replace while the node runs.
type webEndpoint struct {
	ca       *testCA
	dir      string
	certPath string
	keyPath  string
	caPath   string
	leaf     *x509.Certificate
}

func newWebEndpoint(t *testing.T) *webEndpoint {
	t.Helper()
	e := &webEndpoint{ca: newTestCA(t, "bundlex e2e web CA"), dir: t.TempDir()}
	e.caPath = writeTestFile(t, e.dir, "ca.pem", e.ca.certPEM)
	e.renew(t)
	return e
}

// renew writes a new certificate and key from the same CA over the files.
func (e *webEndpoint) renew(t *testing.T) {
	t.Helper()
	certPEM, keyPEM, leaf := e.ca.issueServerCert(t)
	e.keyPath = writeTestFile(t, e.dir, "endpoint.key", keyPEM)
	e.certPath = writeTestFile(t, e.dir, "endpoint.crt", certPEM)
	e.leaf = leaf
}

func (e *webEndpoint) nodeOptions(td string) nodeOptions {
	return nodeOptions{trustDomain: td, refreshHint: peerHint, profile: "https_web",
		certFile: e.certPath, keyFile: e.keyPath}
}

// servedLeaf connects to n's bundle endpoint, verifies its certificate against
// roots for the host 127.0.0.1 and returns the leaf certificate.
func servedLeaf(n *bxNode, roots *x509.CertPool) (*x509.Certificate, error) {
	conn, err := tls.Dial("tcp", n.endpointAddr, &tls.Config{
		RootCAs:    roots,
		ServerName: "127.0.0.1",
		MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// TestHTTPSWebEndpointWithTestCA runs a node whose bundle endpoint uses profile
// https_web with a certificate from a test CA (SPIFFE Federation 5.2.1), and a
// second node that fetches from it.
func TestHTTPSWebEndpointWithTestCA(t *testing.T) {
	web := newWebEndpoint(t)
	orgA := startNode(t, web.nodeOptions("org-a.test"))
	orgB := startNode(t, nodeOptions{trustDomain: "org-b.test"})
	leaf, err := servedLeaf(orgA, web.ca.pool())
	require.NoError(t, err)
	require.Equal(t, web.leaf.SerialNumber, leaf.SerialNumber)

	// Without --ca-file the system roots verify the endpoint, and they do not
	// contain the test CA (SPIFFE Federation 5.2.1.4).
	orgB.cli("federation", "create", "--trust-domain", "org-a.test",
		"--bundle-endpoint-url", orgA.endpointURL(), "--profile", "https_web")
	const unknownCA = "certificate signed by unknown authority"
	rel := waitForFetchError(t, orgB, "org-a.test", unknownCA)
	require.False(t, rel.Status.HasBundle)
	require.Contains(t, orgB.cli("federation", "show", "--trust-domain", "org-a.test"),
		unknownCA)
	_, stderr, err := orgB.cliResult("bundle", "list", "--id", "org-a.test")
	require.Error(t, err)
	require.Contains(t, stderr, "no bundle is stored for trust domain org-a.test")
	orgB.cli("federation", "delete", "--trust-domain", "org-a.test")

	orgB.cli("federation", "create", "--trust-domain", "org-a.test",
		"--bundle-endpoint-url", orgA.endpointURL(), "--profile", "https_web",
		"--ca-file", web.caPath)
	served := localBundle(t, orgA)
	waitForPeerSequence(t, orgB, orgA, served.Sequence, time.Minute)
	stored := storedBundle(t, orgB, "org-a.test")
	require.JSONEq(t, string(served.Document), string(stored.Document))

	// A renewed certificate in the same files is served without a restart, and
	// the peer keeps fetching over it.
	web.renew(t)
	// The node checks the files every 30 seconds
	// (federation.DefaultCertificateReloadInterval), so one check is missed at most.
	waitFor(t, 30*time.Second, "org-a to serve the renewed certificate", func() error {
		leaf, err := servedLeaf(orgA, web.ca.pool())
		if err != nil {
			return err
		}
		if leaf.SerialNumber.Cmp(web.leaf.SerialNumber) != 0 {
			return fmt.Errorf("serving serial %s, expected %s", leaf.SerialNumber,
				web.leaf.SerialNumber)
		}
		return nil
	})
	renewedAt := time.Now()
	waitFor(t, time.Minute, "org-b to fetch over the renewed certificate", func() error {
		rel := showRelationship(t, orgB, "org-a.test")
		st := rel.Status
		if st.LastError != "" {
			return fmt.Errorf("last fetch failed: %s", st.LastError)
		}
		if !st.LastAttempt.After(renewedAt) || st.LastSuccess.Before(st.LastAttempt) {
			return fmt.Errorf("no successful fetch started after the renewal yet")
		}
		return nil
	})
}

// TestProfileMismatchKeepsBundle points an https_spiffe relationship at an
// https_web endpoint and an https_web relationship at an https_spiffe endpoint.
// The client never switches profiles (SPIFFE Federation 5.1, 7.2), so both fetches
// fail with an error that names the profile the server seems to speak, and the
// bootstrap bundles stay as they were.
func TestProfileMismatchKeepsBundle(t *testing.T) {
	web := newWebEndpoint(t)
	orgA := startNode(t, web.nodeOptions("org-a.test"))
	orgB := startNode(t, nodeOptions{trustDomain: "org-b.test", refreshHint: peerHint})

	// org-b expects an X509-SVID from org-a's Web PKI endpoint.
	federateSPIFFE(t, orgB, orgA)
	// org-a expects a Web PKI certificate from the test CA at org-b's SVID endpoint.
	bootstrapB := orgA.writeFile("org-b.json", []byte(orgB.cli("bundle", "show")))
	orgA.cli("federation", "create", "--trust-domain", "org-b.test",
		"--bundle-endpoint-url", orgB.endpointURL(), "--profile", "https_web",
		"--ca-file", web.caPath, "--bundle-path", bootstrapB)

	cases := []struct {
		name   string
		holder *bxNode
		peer   string
		want   []string
	}{
		{"https_spiffe client, https_web server", orgB, "org-a.test",
			[]string{"has no SPIFFE ID, so the server seems to speak https_web",
				"configured for https_spiffe"}},
		{"https_web client, https_spiffe server", orgA, "org-b.test",
			[]string{"carries the SPIFFE ID spiffe://org-b.test/bundlex",
				"the server seems to speak https_spiffe", "configured for https_web"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := storedBundle(t, c.holder, c.peer)
			require.Equal(t, "bootstrap", before.Source)
			rel := waitForFetchError(t, c.holder, c.peer, c.want[0])
			for _, want := range c.want {
				require.Contains(t, rel.Status.LastError, want)
			}
			show := c.holder.cli("federation", "show", "--trust-domain", c.peer)
			require.Contains(t, oneLine(show), c.want[0])
			after := storedBundle(t, c.holder, c.peer)
			require.Equal(t, "bootstrap", after.Source)
			require.Equal(t, before.Sequence, after.Sequence)
			require.JSONEq(t, string(before.Document), string(after.Document))
		})
	}
}

// oneLine joins the lines of a table output, which may wrap a long error.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
