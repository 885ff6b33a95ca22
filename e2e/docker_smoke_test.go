package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

const (
	// dockerTrustDomain is the trust domain of the nodes in container tests.
	dockerTrustDomain = "docker.test"
	// dockerEndpointPort and dockerHealthPort are the ports the nodes listen on inside
	// their containers, as the Dockerfile's EXPOSE lists them.
	dockerEndpointPort = 8443
	dockerHealthPort   = 8080
	// dockerReadyTimeout bounds the wait for a new or restarted node to become
	// ready, Raft election included.
	dockerReadyTimeout = 2 * time.Minute
)

// dockerNodeEnv configures a node with the built-in authority and an
// https_spiffe endpoint, entirely through environment variables.
func dockerNodeEnv() map[string]string {
	return map[string]string{
		"BUNDLEX_TRUST_DOMAIN":            dockerTrustDomain,
		"BUNDLEX_DATA_DIR":                "/var/lib/bundlex",
		"BUNDLEX_LOG_LEVEL":               "debug",
		"BUNDLEX_BUNDLE_ENDPOINT_ADDRESS": fmt.Sprintf("0.0.0.0:%d", dockerEndpointPort),
		"BUNDLEX_BUNDLE_ENDPOINT_PROFILE": "https_spiffe",
		"BUNDLEX_HEALTH_ADDRESS":          fmt.Sprintf("0.0.0.0:%d", dockerHealthPort),
	}
}

func TestDockerImageConfig(t *testing.T) {
	requireDocker(t)
	image := buildImage(t)

	var config struct {
		User       string
		Entrypoint []string
		Cmd        []string
		Volumes    map[string]struct{}
		Labels     map[string]string
	}
	out := mustDocker(t, "image", "inspect", "--format", "{{json .Config}}", image)
	require.NoError(t, json.Unmarshal([]byte(out), &config))
	require.Equal(t, "65532:65532", config.User)
	require.Equal(t, []string{"/bundlex"}, config.Entrypoint)
	require.Equal(t, []string{"server", "--config", nodeConfigPath}, config.Cmd)
	require.Contains(t, config.Volumes, "/var/lib/bundlex")
	require.Equal(t, "e2e", config.Labels["org.opencontainers.image.version"])

	// The image is the binary and an empty directory: anything else that a
	// Dockerfile change copies in shows up as size beyond the binary's.
	binary, err := os.Stat(filepath.Join(repoRoot(t), ".build", "bundlex"))
	require.NoError(t, err)
	size, err := strconv.ParseInt(mustDocker(t, "image", "inspect", "--format", "{{.Size}}",
		image), 10, 64)
	require.NoError(t, err)
	require.Less(t, size-binary.Size(), int64(64<<10), "image size %d, binary size %d",
		size, binary.Size())

	version := mustDocker(t, "run", "--rm", "--network", "none", "--label", dockerLabel,
		image, "version")
	require.True(t, strings.HasPrefix(version, "bundlex e2e "), "version output: %s", version)
}

func TestDockerSingleNode(t *testing.T) {
	requireDocker(t)
	buildImage(t)
	network := newNetwork(t)

	start := time.Now()
	node := runNode(t, network, "node-1", dockerNodeEnv(), nil)
	ready := node.WaitHealthy(dockerReadyTimeout)
	t.Logf("node-1 ready %s after docker create (%s of it waiting for readiness)",
		time.Since(start).Round(time.Millisecond), ready.Round(time.Millisecond))

	// The health listener is plain HTTP and responds to requests from outside
	// the container. The empty Transport sets no Proxy, so the request goes to
	// the container even when the environment names a proxy.
	plain := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	resp, err := plain.Get("http://" + containerAddr(node, dockerHealthPort) + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The bundle that the admin API returns is the trust anchor for the
	// endpoint's X509-SVID: SPIFFE Federation 5.2.2.2 requires a bootstrap
	// bundle for a self-serving endpoint.
	adminBundle := containerLocalBundle(t, node, dockerTrustDomain)
	seq, ok := adminBundle.SequenceNumber()
	require.True(t, ok, "the local bundle has a spiffe_sequence")
	served := fetchDockerBundle(t, node, adminBundle)
	require.True(t, adminBundle.Equal(served),
		"the endpoint serves the bundle that the admin API returns")

	node.Kill()
	start = time.Now()
	node.Start()
	ready = node.WaitHealthy(dockerReadyTimeout)
	t.Logf("node-1 ready %s after docker start following SIGKILL (%s of it waiting "+
		"for readiness)", time.Since(start).Round(time.Millisecond),
		ready.Round(time.Millisecond))

	// The data volume kept the Raft log and the authority's keys, so the node
	// serves the same document at the same sequence instead of a new trust
	// domain.
	afterRestart := fetchDockerBundle(t, node, adminBundle)
	restartSeq, ok := afterRestart.SequenceNumber()
	require.True(t, ok, "the served bundle has a spiffe_sequence")
	require.Equal(t, seq, restartSeq)
	require.True(t, adminBundle.Equal(afterRestart),
		"the same bundle is served after a restart")
}

// containerLocalBundle returns the local bundle as `bundlex bundle show` prints it
// inside the container.
func containerLocalBundle(t *testing.T, c *container, trustDomain string) *spiffebundle.Bundle {
	t.Helper()
	stdout, stderr, err := c.Exec("bundle", "show")
	require.NoError(t, err, "stderr: %s", stderr)
	td := spiffeid.RequireTrustDomainFromString(trustDomain)
	bundle, err := spiffebundle.Parse(td, []byte(stdout))
	require.NoError(t, err, "bundle show output: %s", stdout)
	return bundle
}

// fetchDockerBundle fetches the bundle from a node's https_spiffe endpoint in a
// container. SPIFFE Federation 5.2.2.4: the server must present an X509-SVID
// that verifies against the trusted bundle and carries the configured endpoint
// SPIFFE ID.
func fetchDockerBundle(t *testing.T, c *container,
	trusted *spiffebundle.Bundle) *spiffebundle.Bundle {
	t.Helper()
	endpointID := spiffeid.RequireFromString("spiffe://" + dockerTrustDomain + "/bundlex")
	client := &http.Client{
		// The Transport sets no Proxy, so the request goes to the container even
		// when the environment names a proxy.
		Transport: &http.Transport{
			TLSClientConfig: tlsconfig.TLSClientConfig(trusted,
				tlsconfig.AuthorizeID(endpointID)),
		},
		Timeout: 30 * time.Second,
	}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := containerURL(c, dockerEndpointPort, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err, "GET %s", url)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, body)
	mediaType, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "application/json", mediaType)

	bundle, err := spiffebundle.Parse(trusted.TrustDomain(), body)
	require.NoError(t, err, "GET %s returned %s", url, body)
	return bundle
}

// The image has no system root certificates, so an https_web relationship
// verifies its peer only with its ca_file or with roots mounted into the
// container.
func TestDockerWebPeerNeedsRoots(t *testing.T) {
	requireDocker(t)
	buildImage(t)
	network := newNetwork(t)
	caPEM, certPEM, keyPEM := dockerWebPKI(t, "web-node")

	webEnv := dockerNodeEnv()
	webEnv["BUNDLEX_TRUST_DOMAIN"] = "web.test"
	webEnv["BUNDLEX_BUNDLE_ENDPOINT_PROFILE"] = "https_web"
	webEnv["BUNDLEX_BUNDLE_ENDPOINT_CERT_FILE"] = "/etc/bundlex/web.pem"
	webEnv["BUNDLEX_BUNDLE_ENDPOINT_KEY_FILE"] = "/etc/bundlex/web-key.pem"
	web := runNode(t, network, "web-node", webEnv, map[string][]byte{
		"/etc/bundlex/web.pem":     certPEM,
		"/etc/bundlex/web-key.pem": keyPEM,
	})

	withCAFile := runNode(t, network, "with-ca-file",
		dockerWebConsumerEnv(t, "with-ca-file.test", true),
		map[string][]byte{"/etc/bundlex/web-ca.pem": caPEM})
	// Go reads this file first among the system roots on Linux, so the node
	// behaves as with the host's /etc/ssl/certs mounted.
	withRoots := runNode(t, network, "with-roots",
		dockerWebConsumerEnv(t, "with-roots.test", false),
		map[string][]byte{"/etc/ssl/certs/ca-certificates.crt": caPEM})
	withoutRoots := runNode(t, network, "without-roots",
		dockerWebConsumerEnv(t, "without-roots.test", false), nil)
	for _, c := range []*container{web, withCAFile, withRoots, withoutRoots} {
		c.WaitHealthy(dockerReadyTimeout)
	}

	webSeq, ok := containerLocalBundle(t, web, "web.test").SequenceNumber()
	require.True(t, ok, "the local bundle has a spiffe_sequence")
	for _, c := range []*container{withCAFile, withRoots} {
		waitFor(t, dockerReadyTimeout, c.alias+" to fetch web.test", func() error {
			rel := containerRelationship(t, c, "web.test")
			if !rel.Status.HasBundle {
				return fmt.Errorf("no bundle yet, last error %q", rel.Status.LastError)
			}
			return nil
		})
		rel := containerRelationship(t, c, "web.test")
		require.Equal(t, webSeq, rel.Status.StoredSequence, c.alias)
		require.Empty(t, rel.Status.LastError, c.alias)
	}

	waitFor(t, dockerReadyTimeout, "without-roots to record a failed fetch", func() error {
		if containerRelationship(t, withoutRoots, "web.test").Status.LastError == "" {
			return fmt.Errorf("no fetch error recorded yet")
		}
		return nil
	})
	rel := containerRelationship(t, withoutRoots, "web.test")
	require.False(t, rel.Status.HasBundle)
	require.Contains(t, rel.Status.LastError, "certificate signed by unknown authority")
}

// dockerWebConsumerEnv configures a node that fetches web.test from web-node over
// https_web, with the CA file that runNode copies in when withCA is set.
func dockerWebConsumerEnv(t *testing.T, trustDomain string, withCA bool) map[string]string {
	t.Helper()
	rel := map[string]string{
		"bundle_endpoint_url": fmt.Sprintf("https://web-node:%d/", dockerEndpointPort),
		"profile":             "https_web",
	}
	if withCA {
		rel["ca_file"] = "/etc/bundlex/web-ca.pem"
	}
	relationships, err := json.Marshal(map[string]any{"web.test": rel})
	require.NoError(t, err)
	env := dockerNodeEnv()
	env["BUNDLEX_TRUST_DOMAIN"] = trustDomain
	env["BUNDLEX_FEDERATION_TRUST_DOMAINS"] = string(relationships)
	return env
}

// containerRelationship returns a relationship with its fetch status, as
// `bundlex federation show` prints it inside the container.
func containerRelationship(t *testing.T, c *container, trustDomain string) admin.Relationship {
	t.Helper()
	stdout, stderr, err := c.Exec("federation", "show", "--trust-domain", trustDomain,
		"--output", "json")
	require.NoError(t, err, "stderr: %s", stderr)
	var rel admin.Relationship
	require.NoError(t, json.Unmarshal([]byte(stdout), &rel), "output: %s", stdout)
	return rel
}

// dockerWebPKI returns a self-signed CA and a server certificate for dnsName
// that it signs, with the server's private key, all PEM-encoded.
func dockerWebPKI(t *testing.T, dnsName string) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "docker test web CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate,
		caKey.Public(), caKey)
	require.NoError(t, err)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	template := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: dnsName},
		DNSNames:     []string{dnsName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, caTemplate, key.Public(),
		caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)

	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return caPEM, certPEM, keyPEM
}
