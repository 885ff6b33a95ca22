package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/verify"
)

const (
	// restartPeerTD is the trust domain of the fake https_web peer.
	restartPeerTD = "org-p.test"
	// restartPeerHint makes the node fetch the peer every second, so that each
	// bundle version of the peer is stored within a few seconds.
	restartPeerHint = time.Second
	// restartRounds is how many times the test restarts the node. The replay
	// window after a start is short, so several rounds make a regression show.
	restartRounds = 3
	// responsesAfterReady is how many more correct responses each of the two
	// HTTP pollers gets, on average, after the node reports ready again, to
	// cover the moments right after the gate opens.
	responsesAfterReady = 200
	// notReadyCode is the verify API's error code while the node catches up.
	notReadyCode = "not_ready"
)

// peerKey is a JWT signing key of the fake peer.
type peerKey struct {
	kid string
	key *ecdsa.PrivateKey
}

func newPeerKey(t *testing.T, kid string) peerKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return peerKey{kid: kid, key: key}
}

// sign returns a JWT-SVID for sub and audience, valid for an hour.
func (k peerKey) sign(t *testing.T, sub, audience string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid))
	require.NoError(t, err)
	now := time.Now()
	token, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: sub,
		Audience: jwt.Audience{audience}, IssuedAt: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(time.Hour))}).Serialize()
	require.NoError(t, err)
	return token
}

// peerVersion is one bundle version that the fake peer serves.
type peerVersion struct {
	cas  []*testCA
	keys []peerKey
}

func (v peerVersion) document(t *testing.T, sequence uint64) []byte {
	t.Helper()
	b := spiffebundle.New(spiffeid.RequireTrustDomainFromString(restartPeerTD))
	for _, ca := range v.cas {
		b.AddX509Authority(ca.cert)
	}
	for _, k := range v.keys {
		require.NoError(t, b.AddJWTAuthority(k.kid, &k.key.PublicKey))
	}
	b.SetSequenceNumber(sequence)
	b.SetRefreshHint(restartPeerHint)
	doc, err := b.Marshal()
	require.NoError(t, err)
	return doc
}

// outputFiles records the PEM file contents that a node's file output had, so
// that the test can tell an older version from the current one.
type outputFiles struct {
	dir     string
	current map[string][]byte
	older   map[string][][]byte
}

// waitForPEM waits until dir/<td>.pem holds exactly the CAs of want and records
// its content as the current one, keeping the previous content as older.
func (o *outputFiles) waitForPEM(t *testing.T, td string, want []*x509.Certificate) {
	t.Helper()
	name := td + ".pem"
	var data []byte
	waitFor(t, time.Minute, name+" to hold the new CAs", func() error {
		var err error
		data, err = os.ReadFile(filepath.Join(o.dir, name))
		if err != nil {
			return err
		}
		if got := readPEMCertificates(data); !sameCertificates(got, want) {
			return fmt.Errorf("file holds %d certificates, not the %d expected ones",
				len(got), len(want))
		}
		return nil
	})
	if previous, ok := o.current[name]; ok && !bytes.Equal(previous, data) {
		o.older[name] = append(o.older[name], previous)
	}
	o.current[name] = data
}

// sameCertificates reports whether a and b contain the same certificates, in
// any order.
func sameCertificates(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for _, cert := range a {
		if !slices.ContainsFunc(b, cert.Equal) {
			return false
		}
	}
	return true
}

// restartPollers poll a node's bundle endpoint, verify API and file output in
// loops and record every response that shows an older state or a wrong result.
type restartPollers struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu sync.Mutex
	// violations counts the wrong responses by poller, and examples keeps the
	// first few of each.
	violations map[string]int
	examples   map[string][]string

	endpointOK, endpointNotReady, endpointDown atomic.Int64
	verifyOK, verifyNotReady, verifyDown       atomic.Int64
	outputChecks                               atomic.Int64
}

// maxExamples is how many wrong responses of each poller the failure shows.
const maxExamples = 5

// violation records a wrong response. format starts with the poller's name and a
// colon.
func (p *restartPollers) violation(format string, args ...any) {
	message := fmt.Sprintf(format, args...)
	poller, _, _ := strings.Cut(message, ":")
	p.mu.Lock()
	defer p.mu.Unlock()
	p.violations[poller]++
	if len(p.examples[poller]) < maxExamples {
		p.examples[poller] = append(p.examples[poller], message)
	}
}

func (p *restartPollers) run(poll func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			poll()
		}
	}()
}

// pollEndpoint checks one response of the bundle endpoint: 503 while the node
// catches up, or a bundle whose sequence is at least minSequence.
func (p *restartPollers) pollEndpoint(client *http.Client, url string, minSequence uint64) {
	resp, err := client.Get(url)
	if err != nil {
		p.endpointDown.Add(1)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		p.endpointDown.Add(1)
		return
	}
	switch resp.StatusCode {
	case http.StatusServiceUnavailable:
		p.endpointNotReady.Add(1)
		if resp.Header.Get("Retry-After") == "" && !strings.Contains(string(body),
			"no bundle is available yet") {
			p.violation("bundle endpoint: 503 without Retry-After: %s", body)
		}
	case http.StatusOK:
		b, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("org-a.test"), body)
		if err != nil {
			p.violation("bundle endpoint: unparsable bundle: %v", err)
			return
		}
		sequence, _ := b.SequenceNumber()
		if sequence < minSequence {
			p.violation("bundle endpoint: served spiffe_sequence %d, older than %d",
				sequence, minSequence)
			return
		}
		p.endpointOK.Add(1)
	default:
		p.violation("bundle endpoint: status %d: %s", resp.StatusCode, body)
	}
}

// verifyCase is a token and the only correct verify API result for it, besides
// not_ready: valid when wantCode is empty, otherwise a rejection with wantCode.
type verifyCase struct {
	name     string
	token    string
	audience string
	wantCode string
}

func (p *restartPollers) pollVerify(client *http.Client, url string, tc verifyCase) {
	body, err := json.Marshal(verify.JWTSVIDRequest{Token: tc.token,
		Audience: verify.Audience{tc.audience}})
	if err != nil {
		p.violation("encode request: %v", err)
		return
	}
	resp, err := client.Post(url+verify.JWTSVIDPath, "application/json",
		bytes.NewReader(body))
	if err != nil {
		p.verifyDown.Add(1)
		return
	}
	defer resp.Body.Close()
	var out verify.Response
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		p.violation("verify API: %s: status %d with an unparsable body: %v", tc.name,
			resp.StatusCode, err)
		return
	}
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable && out.Error != nil &&
		out.Error.Code == notReadyCode && resp.Header.Get("Retry-After") != "":
		p.verifyNotReady.Add(1)
	case tc.wantCode == "" && resp.StatusCode == http.StatusOK && out.Valid:
		p.verifyOK.Add(1)
	case tc.wantCode != "" && resp.StatusCode == http.StatusUnauthorized &&
		out.Error != nil && out.Error.Code == tc.wantCode:
		p.verifyOK.Add(1)
	default:
		detail := ""
		if out.Error != nil {
			detail = out.Error.Code + ": " + out.Error.Message
		}
		p.violation("verify API: %s: status %d valid=%t %s", tc.name, resp.StatusCode,
			out.Valid, detail)
	}
}

// pollOutput checks that every file of files is still there and that none holds
// an older version: bundles.json by sequence, PEM files by content.
func (p *restartPollers) pollOutput(files *outputFiles, minSequences map[string]uint64) {
	for name, current := range files.current {
		data, err := os.ReadFile(filepath.Join(files.dir, name))
		if err != nil {
			p.violation("file output: %s: %v", name, err)
			continue
		}
		for _, older := range files.older[name] {
			if bytes.Equal(data, older) {
				p.violation("file output: %s went back to an older version", name)
			}
		}
		if !bytes.Equal(data, current) {
			p.violation("file output: %s was rewritten although no bundle changed", name)
		}
	}
	data, err := os.ReadFile(filepath.Join(files.dir, "bundles.json"))
	if err != nil {
		p.violation("file output: bundles.json: %v", err)
		return
	}
	var doc struct {
		TrustDomains map[string]json.RawMessage `json:"trust_domains"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		p.violation("file output: bundles.json is invalid: %v", err)
		return
	}
	for td, minSequence := range minSequences {
		raw, ok := doc.TrustDomains[td]
		if !ok {
			p.violation("file output: bundles.json lost %s", td)
			continue
		}
		b, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString(td), raw)
		if err != nil {
			p.violation("file output: bundles.json has an invalid bundle of %s: %v", td, err)
			continue
		}
		if sequence, _ := b.SequenceNumber(); sequence < minSequence {
			p.violation("file output: bundles.json has %s at sequence %d, older than %d",
				td, sequence, minSequence)
		}
	}
	p.outputChecks.Add(1)
}

// TestRestartServesNoOlderState restarts a node with federated, rotated bundles
// while the test polls its bundle endpoint, its verify API and its file output.
// hashicorp/raft replays the log after a start, so the node's state passes
// through every older version. No poll may see one: the node responds 503 until
// it has caught up, and the output files stay as they are.
func TestRestartServesNoOlderState(t *testing.T) {
	node := startConsumerNode(t, "org-a.test", "")
	files := &outputFiles{dir: node.outputDir, current: map[string][]byte{},
		older: map[string][][]byte{}}

	// The peer's bundle goes through five versions. The key "retired" is in the
	// first two only, and "current" from the second on.
	peerCA := newTestCA(t, "org-p web CA")
	peer := startFakePeer(t, peerCA)
	retired, current, later := newPeerKey(t, "retired"), newPeerKey(t, "current"),
		newPeerKey(t, "later")
	cas := []*testCA{newTestCA(t, "org-p CA 1"), newTestCA(t, "org-p CA 2"),
		newTestCA(t, "org-p CA 3")}
	versions := []peerVersion{
		{cas: cas[:1], keys: []peerKey{retired}},
		{cas: cas[:2], keys: []peerKey{retired, current}},
		{cas: cas[1:2], keys: []peerKey{current}},
		{cas: cas[1:3], keys: []peerKey{current, later}},
		{cas: cas[2:3], keys: []peerKey{current, later}},
	}
	peer.serve(http.StatusOK, versions[0].document(t, 1))
	createWebRelationship(node.bxNode, restartPeerTD, peer.url(),
		node.writeFile("org-p-web-ca.pem", peerCA.certPEM))
	for i, version := range versions {
		sequence := uint64(i + 1)
		peer.serve(http.StatusOK, version.document(t, sequence))
		waitForFetched(t, node.bxNode, restartPeerTD, sequence)
		var certs []*x509.Certificate
		for _, ca := range version.cas {
			certs = append(certs, ca.cert)
		}
		files.waitForPEM(t, restartPeerTD, certs)
	}

	// Rotations give the local bundle several versions too.
	for range 3 {
		rotated, err := node.client().RotateAuthority(context.Background())
		require.NoError(t, err)
		files.waitForPEM(t, "org-a.test", parseStored(t, rotated).X509Authorities())
	}
	local := parseStored(t, localBundle(t, node.bxNode))
	localSequence, _ := local.SequenceNumber()
	require.GreaterOrEqual(t, localSequence, uint64(4), "three rotations after the first")
	files.waitForPEM(t, "org-a.test", local.X509Authorities())
	minSequences := map[string]uint64{"org-a.test": localSequence, restartPeerTD: 5}
	before := statOutput(t, node.outputDir)

	localToken := mintJWT(t, node.bxNode, plannerID, "org-a", 5*time.Minute).Token
	cases := []verifyCase{
		{"local token", localToken, "org-a", ""},
		{"peer token of a current key", current.sign(t, "spiffe://org-p.test/w", "org-a"),
			"org-a", ""},
		{"peer token of a removed key", retired.sign(t, "spiffe://org-p.test/w", "org-a"),
			"org-a", verify.CodeUnknownKeyID},
	}

	tlsConfig := tlsconfig.TLSClientConfig(local.X509Bundle(),
		tlsconfig.AuthorizeID(spiffeid.RequireFromString(node.endpointID())))
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsConfig, DisableKeepAlives: true}}
	pollers := &restartPollers{stop: make(chan struct{}), violations: map[string]int{},
		examples: map[string][]string{}}
	stopPollers := sync.OnceFunc(func() {
		close(pollers.stop)
		pollers.wg.Wait()
	})
	t.Cleanup(stopPollers)
	pollers.run(func() { pollers.pollEndpoint(client, node.endpointURL(), localSequence) })
	var next atomic.Int64
	verifyURL := "https://" + node.verifyAddr
	pollers.run(func() {
		tc := cases[int(next.Add(1))%len(cases)]
		pollers.pollVerify(client, verifyURL, tc)
	})
	pollers.run(func() { pollers.pollOutput(files, minSequences) })

	for round := 1; round <= restartRounds; round++ {
		node.stop()
		node.launch()
		node.waitReady()
		okBefore := pollers.endpointOK.Load() + pollers.verifyOK.Load()
		waitFor(t, time.Minute, fmt.Sprintf("%d responses after restart %d", responsesAfterReady,
			round), func() error {
			got := pollers.endpointOK.Load() + pollers.verifyOK.Load() - okBefore
			if got < 2*responsesAfterReady {
				return fmt.Errorf("%d correct responses so far", got)
			}
			return nil
		})
	}
	stopPollers()

	t.Logf("bundle endpoint: %d bundles, %d not ready, %d connection failures; verify "+
		"API: %d correct, %d not ready, %d connection failures; %d output checks",
		pollers.endpointOK.Load(), pollers.endpointNotReady.Load(),
		pollers.endpointDown.Load(), pollers.verifyOK.Load(), pollers.verifyNotReady.Load(),
		pollers.verifyDown.Load(), pollers.outputChecks.Load())
	pollers.mu.Lock()
	defer pollers.mu.Unlock()
	require.Empty(t, pollers.violations, "wrong responses by poller, first ones: %s",
		strings.Join(slices.Concat(slices.Collect(maps.Values(pollers.examples))...), "\n"))
	require.Positive(t, pollers.outputChecks.Load())
	require.Equal(t, before, statOutput(t, node.outputDir),
		"the restarts rewrote or removed output files")
}

// statOutput returns every file in dir by name, with its size, modification
// time and inode, which a rewrite through rename changes.
func statOutput(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	out := map[string]string{}
	for _, entry := range entries {
		info, err := entry.Info()
		require.NoError(t, err)
		out[entry.Name()] = fmt.Sprintf("size %d modified %s inode %d", info.Size(),
			info.ModTime().Format(time.RFC3339Nano), info.Sys().(*syscall.Stat_t).Ino)
	}
	return out
}

// TestVerifyRejectsPeerWithoutBundle creates a relationship with a peer that
// never responds. Its SVIDs must get no_bundle, the documented code for a
// federated trust domain whose bundle has not been fetched, and not
// unknown_trust_domain, whose advice to create a relationship would mislead.
func TestVerifyRejectsPeerWithoutBundle(t *testing.T) {
	node := startConsumerNode(t, "org-a.test", "")
	webCA := newTestCA(t, "org-p web CA")
	// Nothing listens on the address: the port was free a moment ago.
	unreachable := "https://" + freeAddr(t) + "/"
	createWebRelationship(node.bxNode, restartPeerTD, unreachable,
		node.writeFile("org-p-web-ca.pem", webCA.certPEM))
	waitForFetchError(t, node.bxNode, restartPeerTD, "connection refused")

	token := newPeerKey(t, "k1").sign(t, "spiffe://org-p.test/w", "org-a")
	api := newVerifyClient(t, node)
	status, resp := api.jwt(token, "org-a")
	requireRejected(t, verify.CodeNoBundle, status, resp)
	require.Contains(t, resp.Error.Message, `no bundle of federated trust domain "org-p.test"`)

	_, err := validateThroughWorkloadAPI(t, node.workloadSocket, token, "org-a")
	require.Error(t, err)
	require.Contains(t, err.Error(), `no bundle of federated trust domain "org-p.test"`)

	other := newPeerKey(t, "k1").sign(t, "spiffe://org-q.test/w", "org-a")
	status, resp = api.jwt(other, "org-a")
	requireRejected(t, verify.CodeUnknownTrustDomain, status, resp)
}

// TestSharedOutputDirectoryRejected starts a second node with the output
// directory of a running one. The second node must fail at start with an error
// that names the directory, and the first node's files must stay.
func TestSharedOutputDirectoryRejected(t *testing.T) {
	first := startConsumerNode(t, "org-a.test", "")
	waitFor(t, time.Minute, "the first node's bundle files", func() error {
		_, err := os.Stat(filepath.Join(first.outputDir, "org-a.test.pem"))
		return err
	})
	before := statOutput(t, first.outputDir)

	dir, err := os.MkdirTemp("", "bx")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	configPath := filepath.Join(dir, "bundlex.yaml")
	cfg := fmt.Sprintf(`trust_domain: org-b.test
node_name: org-b
data_dir: %s
bundle_endpoint:
  address: %s
health:
  address: %s
cluster:
  raft_address: %s
  gossip_address: %s
output:
  directory: %s
`, filepath.Join(dir, "data"), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t),
		first.outputDir)
	require.NoError(t, os.WriteFile(configPath, []byte(cfg), 0o600))

	cmd := exec.Command(bundlexBinary(t), "server", "--config", configPath)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.Error(t, err, "the second node must exit with an error:\n%s", output.String())
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the second node kept running with a shared output directory:\n%s",
			output.String())
	}
	require.Contains(t, output.String(), "output directory "+first.outputDir+
		" is in use by another bundlex node")
	require.Equal(t, before, statOutput(t, first.outputDir))
	// The lock is taken before anything else, so the second node made no keys and
	// no Raft state.
	for _, sub := range []string{"authority", "raft"} {
		_, err := os.Stat(filepath.Join(dir, "data", sub))
		require.True(t, os.IsNotExist(err), "%s was created: %v", sub, err)
	}
}
