package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bundlex/bundlex/internal/admin"
	"github.com/bundlex/bundlex/internal/output"
	"github.com/bundlex/bundlex/internal/verify"
)

const (
	plannerID = "spiffe://org-a.test/agents/planner"
	// maxBundlePushDelay is how long after a node stores a new bundle a Workload
	// API client may wait for it.
	maxBundlePushDelay = 2 * time.Second
	// storePollInterval is the pause between two admin reads while the tests
	// watch for the moment a node stores a bundle. It bounds the measuring error.
	storePollInterval = 5 * time.Millisecond
	// svidTemplate is the workload_api.svid_path_template of the nodes that
	// issue SVIDs to local callers.
	svidTemplate = "/workload/uid/{uid}"
)

// consumerNode is a node with the Workload API, the verify API and the file
// output switched on.
type consumerNode struct {
	*bxNode
	workloadSocket string
	verifyAddr     string
	outputDir      string
}

// startConsumerNode starts a single-node cluster of td with every consumer
// interface on. extraYAML adds top-level sections, such as authority.
func startConsumerNode(t *testing.T, td, extraYAML string) *consumerNode {
	t.Helper()
	return startConsumerNodeWith(t, td, "", extraYAML)
}

// startSVIDConsumerNode is startConsumerNode with a Workload API that issues
// SVIDs under svidTemplate.
func startSVIDConsumerNode(t *testing.T, td string) *consumerNode {
	t.Helper()
	return startConsumerNodeWith(t, td, "  svid_path_template: "+svidTemplate+"\n", "")
}

// startConsumerNodeWith is startConsumerNode with workloadYAML added under
// workload_api, each key indented by two spaces.
func startConsumerNodeWith(t *testing.T, td, workloadYAML, extraYAML string) *consumerNode {
	t.Helper()
	// The socket path must stay under the 108-byte limit, which t.TempDir() paths
	// with long test names exceed.
	socketDir, err := os.MkdirTemp("", "bxw")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(socketDir) })
	c := &consumerNode{
		workloadSocket: filepath.Join(socketDir, "workload.sock"),
		verifyAddr:     freeAddr(t),
		outputDir:      filepath.Join(t.TempDir(), "bundles"),
	}
	c.bxNode = startNode(t, nodeOptions{trustDomain: td, refreshHint: peerHint,
		extraYAML: fmt.Sprintf("workload_api:\n  socket_path: %s\n%sverify:\n  address: %s\n"+
			"output:\n  directory: %s\n%s", c.workloadSocket, workloadYAML, c.verifyAddr,
			c.outputDir, extraYAML)})
	return c
}

// workloadClient connects a go-spiffe Workload API client to socket.
func workloadClient(t *testing.T, socket string) *workloadapi.Client {
	t.Helper()
	client, err := workloadapi.New(context.Background(),
		workloadapi.WithAddr("unix://"+socket))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// parseStored parses a bundle that a node returned through its admin API.
func parseStored(t *testing.T, b admin.Bundle) *spiffebundle.Bundle {
	t.Helper()
	parsed, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString(b.TrustDomain),
		b.Document)
	require.NoError(t, err)
	return parsed
}

// heldBundle returns the bundle of td that n stores, parsed.
func heldBundle(t *testing.T, n *bxNode, td string) *spiffebundle.Bundle {
	t.Helper()
	return parseStored(t, storedBundle(t, n, td))
}

// requireBundlesServed checks that the Workload API on socket returns exactly
// want, by trust domain, in its X.509 and JWT bundle sets.
func requireBundlesServed(t *testing.T, socket string, want ...*spiffebundle.Bundle) {
	t.Helper()
	client := workloadClient(t, socket)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	x509Set, err := client.FetchX509Bundles(ctx)
	require.NoError(t, err)
	jwtSet, err := client.FetchJWTBundles(ctx)
	require.NoError(t, err)
	require.Equal(t, len(want), x509Set.Len(), "X.509 bundles served")
	require.Equal(t, len(want), jwtSet.Len(), "JWT bundles served")
	for _, b := range want {
		gotX509, ok := x509Set.Get(b.TrustDomain())
		require.True(t, ok, "X.509 bundle of %s served", b.TrustDomain())
		require.True(t, gotX509.Equal(b.X509Bundle()), "X.509 bundle of %s", b.TrustDomain())
		gotJWT, ok := jwtSet.Get(b.TrustDomain())
		require.True(t, ok, "JWT bundle of %s served", b.TrustDomain())
		require.True(t, gotJWT.Equal(b.JWTBundle()), "JWT bundle of %s", b.TrustDomain())
	}
}

// timedUpdate is one message of a Workload API stream and when it arrived.
type timedUpdate[T any] struct {
	at    time.Time
	value T
}

// recordingWatcher records every bundle message of WatchX509Bundles and
// WatchJWTBundles with its arrival time.
type recordingWatcher struct {
	ctx  context.Context
	x509 chan timedUpdate[*x509bundle.Set]
	jwt  chan timedUpdate[*jwtbundle.Set]
}

func (w *recordingWatcher) OnX509BundlesUpdate(set *x509bundle.Set) {
	select {
	case w.x509 <- timedUpdate[*x509bundle.Set]{time.Now(), set}:
	case <-w.ctx.Done():
	}
}

func (w *recordingWatcher) OnJWTBundlesUpdate(set *jwtbundle.Set) {
	select {
	case w.jwt <- timedUpdate[*jwtbundle.Set]{time.Now(), set}:
	case <-w.ctx.Done():
	}
}

// Watch errors end in a missing update, which the test reports.
func (w *recordingWatcher) OnX509BundlesWatchError(error) {}
func (w *recordingWatcher) OnJWTBundlesWatchError(error)  {}

// watchBundles starts both bundle streams on socket until the test ends.
func watchBundles(t *testing.T, socket string) *recordingWatcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &recordingWatcher{ctx: ctx, x509: make(chan timedUpdate[*x509bundle.Set], 64),
		jwt: make(chan timedUpdate[*jwtbundle.Set], 64)}
	client := workloadClient(t, socket)
	done := make(chan struct{}, 2)
	go func() { _ = client.WatchX509Bundles(ctx, w); done <- struct{}{} }()
	go func() { _ = client.WatchJWTBundles(ctx, w); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
	})
	return w
}

// awaitUpdate returns the arrival time of the first message on updates that
// satisfies match.
func awaitUpdate[T any](t *testing.T, updates <-chan timedUpdate[T], what string,
	match func(T) bool) time.Time {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case u := <-updates:
			if match(u.value) {
				return u.at
			}
		case <-timeout:
			t.Fatalf("no Workload API message with %s within 30s", what)
		}
	}
}

// storeWindow brackets the moment a node stored a bundle, as seen through its
// admin API. lastMiss is the start of the last read that still returned the old
// sequence, and firstHit the end of the first read that returned the new one.
type storeWindow struct{ lastMiss, firstHit time.Time }

// watchStore polls holder's admin API until it stores td at sequence seq or
// later, and returns the window in which that happened.
func watchStore(t *testing.T, holder *bxNode, td string, seq uint64) storeWindow {
	t.Helper()
	var window storeWindow
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		start := time.Now()
		b, err := holder.client().Bundle(context.Background(), td)
		if err == nil && b.Sequence >= seq {
			window.firstHit = time.Now()
			require.False(t, window.lastMiss.IsZero(),
				"%s stored %s sequence %d before the first read", holder.name, td, seq)
			return window
		}
		window.lastMiss = start
		time.Sleep(storePollInterval)
	}
	t.Fatalf("%s did not store %s sequence %d within a minute", holder.name, td, seq)
	return window
}

// requireRotationPushed rotates owner's keys and checks that a Workload API
// client on socket, served by holder, receives the new X.509 and JWT bundles
// of owner within maxBundlePushDelay of holder storing them.
func requireRotationPushed(t *testing.T, holder, owner *bxNode, socket string) {
	t.Helper()
	watcher := watchBundles(t, socket)
	td := spiffeid.RequireTrustDomainFromString(owner.trustDomain)
	before := heldBundle(t, holder, owner.trustDomain)
	awaitUpdate(t, watcher.x509, "the current bundle of "+owner.trustDomain,
		func(set *x509bundle.Set) bool {
			got, ok := set.Get(td)
			return ok && got.Equal(before.X509Bundle())
		})

	rotated, err := owner.client().RotateAuthority(context.Background())
	require.NoError(t, err)
	want := parseStored(t, rotated)
	window := watchStore(t, holder, owner.trustDomain, rotated.Sequence)
	x509At := awaitUpdate(t, watcher.x509, "the rotated X.509 bundle",
		func(set *x509bundle.Set) bool {
			got, ok := set.Get(td)
			return ok && got.Equal(want.X509Bundle())
		})
	jwtAt := awaitUpdate(t, watcher.jwt, "the rotated JWT bundle",
		func(set *jwtbundle.Set) bool {
			got, ok := set.Get(td)
			return ok && got.Equal(want.JWTBundle())
		})
	requirePushDelay(t, "Workload API client", holder, owner, window,
		bundleArrival{"X.509", x509At}, bundleArrival{"JWT", jwtAt})
}

// bundleArrival is when a client received the new bundle of one kind.
type bundleArrival struct {
	kind string
	at   time.Time
}

// requirePushDelay checks that each arrival came within maxBundlePushDelay of
// holder storing owner's bundle in window, and logs the measured delays.
func requirePushDelay(t *testing.T, client string, holder, owner *bxNode,
	window storeWindow, arrivals ...bundleArrival) {
	t.Helper()
	for _, got := range arrivals {
		// The store happened after window.lastMiss, so this is an upper bound.
		delay := got.at.Sub(window.lastMiss)
		t.Logf("%s received %s's rotated %s bundle at most %s after %s stored it; the "+
			"first admin read that showed the store ended %s after the message", client,
			owner.trustDomain, got.kind, delay.Round(time.Millisecond), holder.name,
			window.firstHit.Sub(got.at).Round(time.Millisecond))
		require.LessOrEqual(t, delay, maxBundlePushDelay, "%s bundle push delay", got.kind)
	}
}

// newBundleSource opens an unmodified go-spiffe BundleSource on socket. Its
// constructor returns after the first FetchX509SVID and FetchJWTBundles
// messages, so it needs a node that issues SVIDs.
func newBundleSource(t *testing.T, socket string) *workloadapi.BundleSource {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	source, err := workloadapi.NewBundleSource(ctx, workloadapi.WithClientOptions(
		workloadapi.WithAddr("unix://"+socket)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = source.Close() })
	return source
}

// requireSourceHolds checks that source contains the X.509 and JWT
// authorities of every bundle in want.
func requireSourceHolds(t *testing.T, source *workloadapi.BundleSource,
	want ...*spiffebundle.Bundle) {
	t.Helper()
	require.NoError(t, sourceHolds(source, want...))
}

// sourceHolds returns an error naming the first bundle of want whose X.509 or
// JWT authorities source does not contain.
func sourceHolds(source *workloadapi.BundleSource, want ...*spiffebundle.Bundle) error {
	for _, b := range want {
		got, err := source.GetBundleForTrustDomain(b.TrustDomain())
		if err != nil {
			return err
		}
		if !got.X509Bundle().Equal(b.X509Bundle()) {
			return fmt.Errorf("X.509 bundle of %s differs", b.TrustDomain())
		}
		if !got.JWTBundle().Equal(b.JWTBundle()) {
			return fmt.Errorf("JWT bundle of %s differs", b.TrustDomain())
		}
	}
	return nil
}

// watchSource reports, on the returned channel, when source first holds
// want's X.509 authorities and when it first holds its JWT authorities. It
// reads the source after every signal on its Updated channel, which coalesces
// signals but never drops the last one.
func watchSource(t *testing.T, source *workloadapi.BundleSource,
	want *spiffebundle.Bundle) <-chan []bundleArrival {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []bundleArrival, 1)
	go func() {
		var x509At, jwtAt time.Time
		for x509At.IsZero() || jwtAt.IsZero() {
			select {
			case <-source.Updated():
			case <-ctx.Done():
				return
			}
			now := time.Now()
			got, err := source.GetBundleForTrustDomain(want.TrustDomain())
			if err != nil {
				continue
			}
			if x509At.IsZero() && got.X509Bundle().Equal(want.X509Bundle()) {
				x509At = now
			}
			if jwtAt.IsZero() && got.JWTBundle().Equal(want.JWTBundle()) {
				jwtAt = now
			}
		}
		done <- []bundleArrival{{"X.509", x509At}, {"JWT", jwtAt}}
	}()
	t.Cleanup(cancel)
	return done
}

// requireRotationReachesSource rotates owner's keys and checks that source,
// a BundleSource served by holder, holds owner's new X.509 and JWT bundles
// within maxBundlePushDelay of holder storing them. It measures the way
// requireRotationPushed does, with the source's Updated channel.
func requireRotationReachesSource(t *testing.T, holder, owner *bxNode,
	source *workloadapi.BundleSource) {
	t.Helper()
	waitFor(t, 30*time.Second, "the BundleSource to hold the current bundle of "+
		owner.trustDomain, func() error {
		return sourceHolds(source, heldBundle(t, holder, owner.trustDomain))
	})
	rotated, err := owner.client().RotateAuthority(context.Background())
	require.NoError(t, err)
	want := parseStored(t, rotated)
	arrivals := watchSource(t, source, want)
	window := watchStore(t, holder, owner.trustDomain, rotated.Sequence)
	select {
	case got := <-arrivals:
		requirePushDelay(t, "go-spiffe BundleSource", holder, owner, window, got...)
	case <-time.After(30 * time.Second):
		t.Fatalf("the BundleSource did not receive %s's rotated bundles within 30s",
			owner.trustDomain)
	}
	requireSourceHolds(t, source, want)
}

// requireCallerSVID checks the identity that socket issues to this test
// process. The X509-SVID has the svidTemplate path in n's trust domain and
// verifies with n's published bundle. The JWT-SVID verifies with that bundle
// and passes the Workload API's ValidateJWTSVID.
func requireCallerSVID(t *testing.T, n *bxNode, socket string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := spiffeid.RequireFromPathf(spiffeid.RequireTrustDomainFromString(n.trustDomain),
		"/workload/uid/%d", os.Getuid())
	source, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(
		workloadapi.WithAddr("unix://"+socket)))
	require.NoError(t, err)
	defer source.Close()
	svid, err := source.GetX509SVID()
	require.NoError(t, err)
	require.Equal(t, want, svid.ID)
	local := parseStored(t, localBundle(t, n))
	id, _, err := x509svid.Verify(svid.Certificates, local)
	require.NoError(t, err, "the X509-SVID chains to the node's published bundle")
	require.Equal(t, want, id)

	client := workloadClient(t, socket)
	token, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "db"})
	require.NoError(t, err)
	require.Equal(t, want, token.ID)
	validated, err := jwtsvid.ParseAndValidate(token.Marshal(), local, []string{"db"})
	require.NoError(t, err, "the JWT-SVID verifies with the node's published bundle")
	require.Equal(t, want, validated.ID)
	validated, err = client.ValidateJWTSVID(ctx, token.Marshal(), "db")
	require.NoError(t, err)
	require.Equal(t, want, validated.ID)
}

func TestWorkloadAPIServesFederatedBundles(t *testing.T) {
	orgA := startNode(t, nodeOptions{trustDomain: "org-a.test", refreshHint: peerHint})
	orgB := startConsumerNode(t, "org-b.test", "")
	orgD := startSVIDConsumerNode(t, "org-d.test")
	federateSPIFFE(t, orgB.bxNode, orgA)
	federateSPIFFE(t, orgD.bxNode, orgA)
	waitForPeerSequence(t, orgB.bxNode, orgA, localBundle(t, orgA).Sequence, time.Minute)
	waitForPeerSequence(t, orgD.bxNode, orgA, localBundle(t, orgA).Sequence, time.Minute)

	requireBundlesServed(t, orgB.workloadSocket, parseStored(t, localBundle(t, orgB.bxNode)),
		heldBundle(t, orgB.bxNode, "org-a.test"))
	requireRotationPushed(t, orgB.bxNode, orgA, orgB.workloadSocket)

	t.Run("bundle source without SVIDs fails fast", func(t *testing.T) {
		// go-spiffe v2.9.0's BundleSource also watches FetchX509SVID, which a node
		// without svid_path_template rejects with InvalidArgument. The watcher gives
		// up on that code at once, so the constructor fails instead of retrying
		// until the context ends.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		started := time.Now()
		_, err := workloadapi.NewBundleSource(ctx, workloadapi.WithClientOptions(
			workloadapi.WithAddr("unix://"+orgB.workloadSocket)))
		require.Error(t, err)
		require.Equal(t, codes.InvalidArgument, status.Code(err), "error: %v", err)
		require.Contains(t, err.Error(), "bundlex distributes bundles only")
		require.Contains(t, err.Error(), "set workload_api.svid_path_template")
		require.Less(t, time.Since(started), 5*time.Second, "NewBundleSource must fail fast")
	})

	t.Run("bundle source with SVIDs", func(t *testing.T) {
		source := newBundleSource(t, orgD.workloadSocket)
		requireSourceHolds(t, source, parseStored(t, localBundle(t, orgD.bxNode)),
			heldBundle(t, orgD.bxNode, "org-a.test"))
		requireRotationReachesSource(t, orgD.bxNode, orgA, source)
		requireCallerSVID(t, orgD.bxNode, orgD.workloadSocket)
	})
}

func TestWorkloadAPIOnClusterFollower(t *testing.T) {
	c := startLocalCluster(t, "org-c.test", 3, peerHint)
	orgA := startNode(t, nodeOptions{trustDomain: "org-a.test", refreshHint: peerHint})

	// startLocalCluster takes no consumer settings, so one follower gets the
	// Workload API, with SVIDs, through its configuration file and a restart.
	follower := c.follower()
	socketDir, err := os.MkdirTemp("", "bxw")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(socketDir) })
	socket := filepath.Join(socketDir, "workload.sock")
	follower.stop()
	appendToFile(t, follower.configPath, "workload_api:\n  socket_path: "+socket+"\n"+
		"  svid_path_template: "+svidTemplate+"\n")
	follower.start()
	waitFor(t, time.Minute, follower.name+" to follow", func() error {
		st, err := follower.client().ClusterRaft(context.Background())
		if err != nil {
			return err
		}
		if st.State != "Follower" {
			return fmt.Errorf("raft state %s", st.State)
		}
		return nil
	})

	// The relationship is created through the follower, which forwards the write.
	federateSPIFFE(t, follower, orgA)
	waitForPeerSequence(t, follower, orgA, localBundle(t, orgA).Sequence, time.Minute)
	local := localBundle(t, follower)
	require.Equal(t, 3, local.X509Keys, "one CA per cluster node")
	requireBundlesServed(t, socket, parseStored(t, local),
		heldBundle(t, follower, "org-a.test"))
	requireRotationPushed(t, follower, orgA, socket)

	// The follower signs the caller's SVID with its own CA, which the cluster's
	// local bundle contains.
	source := newBundleSource(t, socket)
	requireSourceHolds(t, source, parseStored(t, localBundle(t, follower)),
		heldBundle(t, follower, "org-a.test"))
	requireRotationReachesSource(t, follower, orgA, source)
	requireCallerSVID(t, follower, socket)
}

func appendToFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(text)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// verifyClient calls a node's verify API over TLS and authenticates the server
// as a consumer does. The server's certificate is the node's bundle endpoint
// X509-SVID, so it must chain to the node's own bundle and carry the endpoint's
// SPIFFE ID.
type verifyClient struct {
	t    *testing.T
	base string
	http *http.Client
}

func newVerifyClient(t *testing.T, n *consumerNode) *verifyClient {
	t.Helper()
	return verifyClientFor(t, parseStored(t, localBundle(t, n.bxNode)), n.endpointID(),
		n.verifyAddr)
}

// verifyClientFor returns a client of the verify API at addr whose server
// presents an X509-SVID with serverID, signed by a CA of local.
func verifyClientFor(t *testing.T, local *spiffebundle.Bundle, serverID,
	addr string) *verifyClient {
	tlsConfig := tlsconfig.TLSClientConfig(local.X509Bundle(),
		tlsconfig.AuthorizeID(spiffeid.RequireFromString(serverID)))
	return &verifyClient{t: t, base: "https://" + addr, http: &http.Client{
		Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}}
}

func (c *verifyClient) post(path, contentType string, body []byte) (int, verify.Response) {
	c.t.Helper()
	resp, err := c.http.Post(c.base+path, contentType, bytes.NewReader(body))
	require.NoError(c.t, err)
	defer resp.Body.Close()
	require.Equal(c.t, "application/json", resp.Header.Get("Content-Type"))
	var out verify.Response
	require.NoError(c.t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func (c *verifyClient) jwt(token string, audience ...string) (int, verify.Response) {
	c.t.Helper()
	body, err := json.Marshal(verify.JWTSVIDRequest{Token: token, Audience: audience})
	require.NoError(c.t, err)
	return c.post(verify.JWTSVIDPath, "application/json", body)
}

func (c *verifyClient) x509(chainPEM string) (int, verify.Response) {
	c.t.Helper()
	body, err := json.Marshal(verify.X509SVIDRequest{ChainPEM: chainPEM})
	require.NoError(c.t, err)
	return c.post(verify.X509SVIDPath, "application/json", body)
}

// requireRejected checks a 401 response with code.
func requireRejected(t *testing.T, code string, status int, resp verify.Response) {
	t.Helper()
	require.Equal(t, http.StatusUnauthorized, status)
	require.False(t, resp.Valid)
	require.NotNil(t, resp.Error)
	require.Equal(t, code, resp.Error.Code, "message: %s", resp.Error.Message)
}

// mintJWT mints a JWT-SVID through `svid mint jwt` on n.
func mintJWT(t *testing.T, n *bxNode, id, audience string, ttl time.Duration) admin.JWTSVID {
	t.Helper()
	out := n.cli("--output", "json", "svid", "mint", "jwt", "--spiffe-id", id,
		"--audience", audience, "--ttl", ttl.String())
	var svid admin.JWTSVID
	require.NoError(t, json.Unmarshal([]byte(out), &svid))
	require.Equal(t, id, svid.SPIFFEID)
	return svid
}

// signForeignJWT signs a JWT-SVID for sub with a new key that no bundle holds.
func signForeignJWT(t *testing.T, sub, kid, audience string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	require.NoError(t, err)
	now := time.Now()
	token, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: sub,
		Audience: jwt.Audience{audience}, IssuedAt: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}).Serialize()
	require.NoError(t, err)
	return token
}

// validateThroughWorkloadAPI calls ValidateJWTSVID on socket.
func validateThroughWorkloadAPI(t *testing.T, socket, token, audience string) (
	*jwtsvid.SVID, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return workloadapi.ValidateJWTSVID(ctx, token, audience,
		workloadapi.WithAddr("unix://"+socket))
}

// requireWorkloadAPIRejects checks that ValidateJWTSVID rejects token with
// InvalidArgument and a message that contains reason.
func requireWorkloadAPIRejects(t *testing.T, socket, token, audience, reason string) {
	t.Helper()
	_, err := validateThroughWorkloadAPI(t, socket, token, audience)
	require.Error(t, err)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "error: %v", err)
	require.Contains(t, err.Error(), reason)
}

func TestJWTSVIDFromOrgAVerifiedAtOrgB(t *testing.T) {
	orgA := startNode(t, nodeOptions{trustDomain: "org-a.test", refreshHint: peerHint})
	orgB := startConsumerNode(t, "org-b.test", "")
	federateSPIFFE(t, orgB.bxNode, orgA)
	waitForPeerSequence(t, orgB.bxNode, orgA, localBundle(t, orgA).Sequence, time.Minute)
	api := newVerifyClient(t, orgB)
	socket := orgB.workloadSocket

	// The token that must expire is minted first, so that the other cases run
	// while its lifetime and the verifier's clock skew pass.
	shortLived := mintJWT(t, orgA, plannerID, "org-b", time.Second)
	status, resp := api.jwt(shortLived.Token, "org-b")
	require.Equal(t, http.StatusOK, status, "a token inside exp plus skew: %+v", resp.Error)

	t.Run("valid token accepted", func(t *testing.T) {
		svid := mintJWT(t, orgA, plannerID, "org-b", time.Minute)
		status, resp := api.jwt(svid.Token, "org-b")
		require.Equal(t, http.StatusOK, status, "error: %+v", resp.Error)
		require.True(t, resp.Valid)
		require.Equal(t, plannerID, resp.SPIFFEID)
		require.Equal(t, "org-a.test", resp.TrustDomain)
		require.Equal(t, []string{"org-b"}, resp.Audience)
		require.NotEmpty(t, resp.KeyID)
		require.Equal(t, svid.ExpiresAt.UTC().Format(time.RFC3339), resp.ExpiresAt)

		validated, err := validateThroughWorkloadAPI(t, socket, svid.Token, "org-b")
		require.NoError(t, err)
		require.Equal(t, plannerID, validated.ID.String())

		// A workload can also check the token itself with the JWT bundles that
		// a JWTSource streams from the node.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		source, err := workloadapi.NewJWTSource(ctx, workloadapi.WithClientOptions(
			workloadapi.WithAddr("unix://"+socket)))
		require.NoError(t, err)
		defer source.Close()
		parsed, err := jwtsvid.ParseAndValidate(svid.Token, source, []string{"org-b"})
		require.NoError(t, err)
		require.Equal(t, plannerID, parsed.ID.String())
	})

	t.Run("wrong audience rejected", func(t *testing.T) {
		svid := mintJWT(t, orgA, plannerID, "org-c", time.Minute)
		status, resp := api.jwt(svid.Token, "org-b")
		requireRejected(t, verify.CodeAudienceMismatch, status, resp)
		requireWorkloadAPIRejects(t, socket, svid.Token, "org-b", "audience")
	})

	t.Run("unpublished key rejected", func(t *testing.T) {
		token := signForeignJWT(t, plannerID, "not-in-the-bundle", "org-b")
		status, resp := api.jwt(token, "org-b")
		requireRejected(t, verify.CodeUnknownKeyID, status, resp)
		require.Contains(t, resp.Error.Message, `kid "not-in-the-bundle"`)
		requireWorkloadAPIRejects(t, socket, token, "org-b", "not-in-the-bundle")
	})

	t.Run("unfederated trust domain rejected", func(t *testing.T) {
		token := signForeignJWT(t, "spiffe://org-x.test/agents/planner", "x1", "org-b")
		status, resp := api.jwt(token, "org-b")
		requireRejected(t, verify.CodeUnknownTrustDomain, status, resp)
		requireWorkloadAPIRejects(t, socket, token, "org-b", `"org-x.test"`)
	})

	t.Run("ID outside peer prefixes rejected", func(t *testing.T) {
		orgB.cli("federation", "update", "--trust-domain", "org-a.test",
			"--allowed-id-prefix", "spiffe://org-a.test/agents/")
		show := orgB.cli("federation", "show", "--trust-domain", "org-a.test")
		require.Contains(t, show, "spiffe://org-a.test/agents/")

		other := mintJWT(t, orgA, "spiffe://org-a.test/other", "org-b", time.Minute)
		status, resp := api.jwt(other.Token, "org-b")
		requireRejected(t, verify.CodeIDNotAllowed, status, resp)
		requireWorkloadAPIRejects(t, socket, other.Token, "org-b", "outside the ID prefixes")

		planner := mintJWT(t, orgA, plannerID, "org-b", time.Minute)
		status, resp = api.jwt(planner.Token, "org-b")
		require.Equal(t, http.StatusOK, status, "an ID under the prefix: %+v", resp.Error)
	})

	t.Run("expired token rejected", func(t *testing.T) {
		// The verifier accepts a token until exp plus verify.DefaultClockSkew,
		// and the node has no setting for the skew, so the test waits it out.
		rejectedFrom := shortLived.ExpiresAt.Add(verify.DefaultClockSkew)
		var status int
		var resp verify.Response
		waitFor(t, time.Until(rejectedFrom)+30*time.Second, "the token to expire", func() error {
			status, resp = api.jwt(shortLived.Token, "org-b")
			if resp.Valid {
				return fmt.Errorf("still accepted")
			}
			return nil
		})
		requireRejected(t, verify.CodeExpired, status, resp)
		// exp has whole seconds, so the rejection may come up to a second early.
		require.False(t, time.Now().Before(rejectedFrom.Add(-time.Second)),
			"rejected before exp plus the clock skew")
		requireWorkloadAPIRejects(t, socket, shortLived.Token, "org-b", "expired")
	})
}

func TestX509SVIDFromSPIREVerifiedAtBundlex(t *testing.T) {
	spire := startSPIRE(t, SPIREOptions{TrustDomain: "spire.test"})
	node := startConsumerNode(t, "org-b.test", "")
	node.cli("federation", "create", "--trust-domain", "spire.test",
		"--bundle-endpoint-url", spire.EndpointURL(), "--profile", "https_spiffe",
		"--endpoint-spiffe-id", spire.EndpointID().String(), "--bundle-path",
		node.writeFile("spire-bundle.json", spire.BundleSPIFFE(t)))
	waitFor(t, time.Minute, "bundlex to fetch SPIRE's bundle", func() error {
		b, err := node.client().Bundle(context.Background(), "spire.test")
		if err != nil {
			return err
		}
		if b.Source != "fetched" {
			return fmt.Errorf("bundle source is %s", b.Source)
		}
		return nil
	})
	api := newVerifyClient(t, node)

	certsPEM, _ := spire.MintX509(t, "spiffe://spire.test/workload/api", 0)
	leaf := parseCertificates(t, string(certsPEM))[0]
	status, resp := api.x509(string(certsPEM))
	require.Equal(t, http.StatusOK, status, "error: %+v", resp.Error)
	require.True(t, resp.Valid)
	require.Equal(t, "spiffe://spire.test/workload/api", resp.SPIFFEID)
	require.Equal(t, "spire.test", resp.TrustDomain)
	require.Equal(t, leaf.NotAfter.UTC().Format(time.RFC3339), resp.ExpiresAt)

	// The chain may also be the request body itself.
	status, resp = api.post(verify.X509SVIDPath, "application/x-pem-file", certsPEM)
	require.Equal(t, http.StatusOK, status, "error: %+v", resp.Error)
	require.Equal(t, "spiffe://spire.test/workload/api", resp.SPIFFEID)

	// A peer policy applies to SPIRE's IDs as to any federated trust domain.
	node.cli("federation", "update", "--trust-domain", "spire.test",
		"--allowed-id-prefix", "spiffe://spire.test/agents/")
	status, resp = api.x509(string(certsPEM))
	requireRejected(t, verify.CodeIDNotAllowed, status, resp)
}

func TestFileOutputAfterRotation(t *testing.T) {
	orgA := startNode(t, nodeOptions{trustDomain: "org-a.test", refreshHint: peerHint})
	orgB := startConsumerNode(t, "org-b.test", "")
	federateSPIFFE(t, orgB.bxNode, orgA)
	waitForPeerSequence(t, orgB.bxNode, orgA, localBundle(t, orgA).Sequence, time.Minute)

	rotated, err := orgA.client().RotateAuthority(context.Background())
	require.NoError(t, err)
	waitForPeerSequence(t, orgB.bxNode, orgA, rotated.Sequence, time.Minute)
	wantA := parseStored(t, rotated)
	wantB := parseStored(t, localBundle(t, orgB.bxNode))
	require.Len(t, wantA.X509Authorities(), 2, "the rotation adds the next CA")

	pemPath := filepath.Join(orgB.outputDir, "org-a.test.pem")
	waitFor(t, 30*time.Second, "org-a.test.pem to hold the rotated CAs", func() error {
		data, err := os.ReadFile(pemPath)
		if err != nil {
			return err
		}
		if got := readPEMCertificates(data); !x509bundle.FromX509Authorities(
			wantA.TrustDomain(), got).Equal(wantA.X509Bundle()) {
			return fmt.Errorf("file holds %d certificates", len(got))
		}
		return nil
	})
	for _, want := range []*spiffebundle.Bundle{wantA, wantB} {
		path := filepath.Join(orgB.outputDir, want.TrustDomain().Name()+".pem")
		info, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o644), info.Mode().Perm(), path)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		got := x509bundle.FromX509Authorities(want.TrustDomain(), readPEMCertificates(data))
		require.True(t, got.Equal(want.X509Bundle()), path)
	}
	entries, err := os.ReadDir(orgB.outputDir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{"bundles.json", "org-a.test.pem", "org-b.test.pem",
		output.ManifestFile, output.LockFile}, names)

	data, err := os.ReadFile(filepath.Join(orgB.outputDir, "bundles.json"))
	require.NoError(t, err)
	var bundleMap struct {
		TrustDomains map[string]json.RawMessage `json:"trust_domains"`
	}
	require.NoError(t, json.Unmarshal(data, &bundleMap))
	require.Len(t, bundleMap.TrustDomains, 2)
	for _, want := range []*spiffebundle.Bundle{wantA, wantB} {
		raw, ok := bundleMap.TrustDomains[want.TrustDomain().Name()]
		require.True(t, ok, "bundles.json has %s", want.TrustDomain())
		got, err := spiffebundle.Parse(want.TrustDomain(), raw)
		require.NoError(t, err)
		require.True(t, got.X509Bundle().Equal(want.X509Bundle()), want.TrustDomain().Name())
		require.True(t, got.JWTBundle().Equal(want.JWTBundle()), want.TrustDomain().Name())
	}
}

// readPEMCertificates parses every CERTIFICATE block of data and skips what
// does not parse, so that a wrong file shows up as a mismatch.
func readPEMCertificates(data []byte) []*x509.Certificate {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return certs
		}
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
			certs = append(certs, cert)
		}
	}
}

func TestMintRejectsOutsidePolicy(t *testing.T) {
	node := startNode(t, nodeOptions{trustDomain: "org-a.test", extraYAML: `authority:
  mint_allowed_id_prefixes: [spiffe://org-a.test/agents/]
  x509_svid_max_ttl: 10m
  jwt_svid_max_ttl: 2m
`})
	outside := "is outside the prefixes this node may mint for " +
		"(authority.mint_allowed_id_prefixes: spiffe://org-a.test/agents/)"
	foreign := "is not in the local trust domain org-a.test"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"x509 outside prefixes", []string{"svid", "mint", "x509", "--spiffe-id",
			"spiffe://org-a.test/other"}, "spiffe://org-a.test/other " + outside},
		{"jwt outside prefixes", []string{"svid", "mint", "jwt", "--spiffe-id",
			"spiffe://org-a.test/other", "--audience", "org-b"},
			"spiffe://org-a.test/other " + outside},
		{"prefix matches whole segments", []string{"svid", "mint", "jwt", "--spiffe-id",
			"spiffe://org-a.test/agentsx", "--audience", "org-b"},
			"spiffe://org-a.test/agentsx " + outside},
		{"x509 other trust domain", []string{"svid", "mint", "x509", "--spiffe-id",
			"spiffe://org-b.test/agents/planner"}, "spiffe://org-b.test/agents/planner " +
			foreign},
		{"jwt other trust domain", []string{"svid", "mint", "jwt", "--spiffe-id",
			"spiffe://org-b.test/agents/planner", "--audience", "org-b"},
			"spiffe://org-b.test/agents/planner " + foreign},
		{"x509 ttl over maximum", []string{"svid", "mint", "x509", "--spiffe-id", plannerID,
			"--ttl", "11m"}, "TTL 11m0s is over the maximum 10m0s"},
		{"jwt ttl over maximum", []string{"svid", "mint", "jwt", "--spiffe-id", plannerID,
			"--audience", "org-b", "--ttl", "3m"}, "TTL 3m0s is over the maximum 2m0s"},
		{"x509 alias applies policy", []string{"x509", "mint", "--spiffe-id",
			"spiffe://org-a.test/other"}, "spiffe://org-a.test/other " + outside},
		{"jwt alias applies policy", []string{"jwt", "mint", "--spiffe-id", plannerID,
			"--audience", "org-b", "--ttl", "3m"}, "TTL 3m0s is over the maximum 2m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := node.cliResult(tt.args...)
			require.Error(t, err)
			require.Empty(t, stdout)
			require.True(t, strings.HasPrefix(stderr, "Error: "), stderr)
			require.Contains(t, stderr, tt.want)
		})
	}

	// Inside the policy both kinds are minted, with the maximum TTL by default.
	local := parseStored(t, localBundle(t, node))
	var x509SVID admin.X509SVID
	require.NoError(t, json.Unmarshal([]byte(node.cli("--output", "json", "svid", "mint",
		"x509", "--spiffe-id", plannerID, "--ttl", "10m")), &x509SVID))
	certs := parseCertificates(t, x509SVID.CertsPEM)
	id, _, err := x509svid.Verify(certs, local)
	require.NoError(t, err)
	require.Equal(t, plannerID, id.String())
	require.WithinDuration(t, time.Now().Add(10*time.Minute), certs[0].NotAfter, time.Minute)
	token := strings.TrimSpace(node.cli("svid", "mint", "jwt", "--spiffe-id", plannerID,
		"--audience", "org-b"))
	parsed, err := jwtsvid.ParseAndValidate(token, local, []string{"org-b"})
	require.NoError(t, err)
	require.Equal(t, plannerID, parsed.ID.String())
	require.WithinDuration(t, time.Now().Add(2*time.Minute), parsed.Expiry, 10*time.Second)
}
