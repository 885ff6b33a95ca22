package e2e

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

// localCluster is a cluster of bundlex processes on loopback, with mutual TLS
// between nodes and an encrypted gossip.
type localCluster struct {
	t     *testing.T
	nodes []*bxNode
}

// startLocalCluster starts size nodes of trust domain td that bootstrap together
// and waits until they are ready. extraYAML, when given, adds top-level
// configuration sections to every node.
func startLocalCluster(t *testing.T, td string, size int, refreshHint time.Duration,
	extraYAML ...string) *localCluster {
	t.Helper()
	c := launchLocalCluster(t, td, size, refreshHint, nil, extraYAML...)
	for _, n := range c.nodes {
		n.waitReady()
	}
	return c
}

// launchLocalCluster starts the processes of startLocalCluster without waiting
// for them. extraJoin adds gossip addresses to every node's join list.
func launchLocalCluster(t *testing.T, td string, size int, refreshHint time.Duration,
	extraJoin []string, extraYAML ...string) *localCluster {
	t.Helper()
	certDir := t.TempDir()
	runBundlex(t, "cluster", "tls", "create-ca", "--dir", certDir)
	gossipKey := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	gossip := make([]string, size)
	for i := range gossip {
		gossip[i] = freeAddr(t)
	}
	join := append(slices.Clone(gossip), extraJoin...)
	c := &localCluster{t: t}
	for i := 0; i < size; i++ {
		name := fmt.Sprintf("node-%d", i+1)
		runBundlex(t, "cluster", "tls", "create-cert", "--dir", certDir, "--node", name,
			"--ca", filepath.Join(certDir, "bundlex-cluster-ca.pem"),
			"--ca-key", filepath.Join(certDir, "bundlex-cluster-ca-key.pem"))
		clusterYAML := fmt.Sprintf(`  gossip_address: %s
  bootstrap_expect: %d
  join: [%s]
  gossip_key: %s
  server_stabilization_time: 1s
  tls:
    ca_file: %s
    cert_file: %s
    key_file: %s
`, gossip[i], size, strings.Join(join, ", "), gossipKey,
			filepath.Join(certDir, "bundlex-cluster-ca.pem"),
			filepath.Join(certDir, name+".pem"), filepath.Join(certDir, name+"-key.pem"))
		n := newNode(t, clusterNodeOptions{trustDomain: td, refreshHint: refreshHint, name: name,
			clusterYAML: clusterYAML, extraYAML: strings.Join(extraYAML, "")})
		n.launch()
		c.nodes = append(c.nodes, n)
	}
	return c
}

// runBundlex runs the bundlex CLI without a node and fails the test on error.
func runBundlex(t *testing.T, args ...string) string {
	t.Helper()
	n := &bxNode{t: t, socket: "unused.sock"}
	return n.cli(args...)
}

// leader returns the node that is the Raft leader, waiting for one.
func (c *localCluster) leader() *bxNode {
	c.t.Helper()
	var found *bxNode
	waitFor(c.t, time.Minute, "a cluster leader", func() error {
		for _, n := range c.nodes {
			if n.cmd == nil {
				continue
			}
			st, err := n.client().ClusterRaft(context.Background())
			if err == nil && st.State == "Leader" {
				found = n
				return nil
			}
		}
		return fmt.Errorf("no node is leader")
	})
	return found
}

// follower returns a running node that is not the leader.
func (c *localCluster) follower() *bxNode {
	leader := c.leader()
	for _, n := range c.nodes {
		if n != leader && n.cmd != nil {
			return n
		}
	}
	c.t.Fatal("no follower is running")
	return nil
}

func TestLocalClusterWritesReadsAndKeys(t *testing.T) {
	c := startLocalCluster(t, "org-c.test", 3, peerHint)
	ctx := context.Background()
	leader := c.leader()

	// All three servers are voters in one Raft configuration.
	waitFor(t, time.Minute, "three voters", func() error {
		st, err := leader.client().ClusterRaft(ctx)
		if err != nil {
			return err
		}
		voters := 0
		for _, s := range st.Servers {
			if s.Suffrage == "voter" {
				voters++
			}
		}
		if voters != 3 {
			return fmt.Errorf("%d voters", voters)
		}
		return nil
	})
	members := leader.cli("cluster", "members")
	for _, n := range c.nodes {
		require.Contains(t, members, n.name)
	}

	// A write on a follower is forwarded to the leader and visible on every node.
	follower := c.follower()
	bundlePath := follower.writeFile("peer.json", []byte(leader.cli("bundle", "show")))
	_, stderr, err := follower.cliResult("bundle", "set", "--id", "org-x.test",
		"--path", bundlePath)
	require.NoError(t, err, stderr)
	_, err = follower.client().Bundle(ctx, "org-x.test")
	require.NoError(t, err, "a follower reads its own forwarded write at once")
	for _, n := range c.nodes {
		waitFor(t, 30*time.Second, n.name+" to hold org-x.test", func() error {
			_, err := n.client().Bundle(ctx, "org-x.test")
			return err
		})
	}

	// Every node's endpoint certificate verifies against the one local bundle,
	// which holds the public keys of all three nodes.
	local := localBundle(t, leader)
	require.Equal(t, 3, local.X509Keys, "one CA per node")
	require.Equal(t, 3, local.JWTKeys, "one JWT key per node")
	td := spiffeid.RequireTrustDomainFromString("org-c.test")
	parsed, err := spiffebundle.Parse(td, local.Document)
	require.NoError(t, err)
	for _, n := range c.nodes {
		svid, err := n.client().MintX509SVID(ctx, admin.MintX509SVIDRequest{
			SPIFFEID: "spiffe://org-c.test/" + n.name})
		require.NoError(t, err)
		_, _, err = x509svid.Verify(parseCertificates(t, svid.CertsPEM), parsed)
		require.NoError(t, err, "SVID of %s", n.name)
	}

	// A rotation on a follower reaches the local bundle through the leader.
	before := localBundle(t, follower).Sequence
	rotated := follower.cli("authority", "rotate", "--output", "json")
	require.Contains(t, rotated, `"x509_keys": 4`)
	require.Greater(t, localBundle(t, leader).Sequence, before)

	// Reads return the local state with its freshness in headers, and a
	// consistent read on a follower goes through the leader.
	for _, query := range []string{"", "?consistent=true"} {
		resp := socketGet(t, follower, "/v1/bundles"+query)
		require.Equal(t, http.StatusOK, resp.StatusCode, query)
		require.NotEmpty(t, resp.Header.Get("X-Bundlex-Index"), query)
		require.NotEmpty(t, resp.Header.Get("X-Bundlex-Last-Contact"), query)
		require.Equal(t, "true", resp.Header.Get("X-Bundlex-Known-Leader"), query)
	}
	endpointResp, err := insecureEndpointGet(follower)
	require.NoError(t, err)
	require.NotEmpty(t, endpointResp.Header.Get("X-Bundlex-Index"))

	// Snapshots are taken on the leader, from any node.
	snapshot := filepath.Join(t.TempDir(), "state.snap")
	follower.cli("snapshot", "save", snapshot)
	info, err := os.Stat(snapshot)
	require.NoError(t, err)
	require.Positive(t, info.Size())
}

func TestLocalClusterRejectsForeignCertificate(t *testing.T) {
	// An intruder has the gossip key and the same bootstrap_expect, but its node
	// certificate comes from another CA. Its name sorts before node-1, and it
	// runs before the cluster starts, so every node learns of it at its first join.
	otherCA := t.TempDir()
	runBundlex(t, "cluster", "tls", "create-ca", "--dir", otherCA)
	runBundlex(t, "cluster", "tls", "create-cert", "--dir", otherCA, "--node", "intruder",
		"--ca", filepath.Join(otherCA, "bundlex-cluster-ca.pem"),
		"--ca-key", filepath.Join(otherCA, "bundlex-cluster-ca-key.pem"))
	gossipKey := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	intruderGossip := freeAddr(t)
	intruder := newNode(t, clusterNodeOptions{trustDomain: "org-c.test", refreshHint: peerHint,
		name: "intruder", clusterYAML: fmt.Sprintf(`  gossip_address: %s
  bootstrap_expect: 3
  gossip_key: %s
  tls:
    ca_file: %s
    cert_file: %s
    key_file: %s
`, intruderGossip, gossipKey,
			filepath.Join(otherCA, "bundlex-cluster-ca.pem"),
			filepath.Join(otherCA, "intruder.pem"), filepath.Join(otherCA, "intruder-key.pem"))})
	intruder.launch()
	ctx := context.Background()
	waitFor(t, time.Minute, "the intruder's gossip to start", func() error {
		members, err := intruder.client().ClusterMembers(ctx)
		if err != nil {
			return err
		}
		for _, m := range members {
			if m.Name == "intruder" && m.Status == "alive" {
				return nil
			}
		}
		return fmt.Errorf("the intruder does not list itself alive: %+v", members)
	})

	// The bootstrap leaves the intruder out, so the three nodes form a cluster
	// although the intruder has the lowest name.
	c := launchLocalCluster(t, "org-c.test", 3, peerHint, []string{intruderGossip})
	for _, n := range c.nodes {
		n.waitReady()
	}
	require.Regexp(t, `server failed the Raft connection check, so it does not count `+
		`toward bootstrap_expect.*member=intruder.*raft_address=\S+`+
		`.*certificate signed by unknown authority`, c.nodes[0].logs())
	require.NotContains(t, intruder.logs(), "bootstrapped the cluster")
	leader := c.leader()
	bundlePath := leader.writeFile("secret.json", []byte(leader.cli("bundle", "show")))
	leader.cli("bundle", "set", "--id", "org-secret.test", "--path", bundlePath)
	join := c.gossipAddrs(t)

	// Gossip admits the intruder, but the leader's TLS check of its Raft address
	// fails, so the leader never adds it to the Raft configuration.
	var reported admin.ClusterMember
	waitFor(t, time.Minute, "the leader to report the intruder's failed check", func() error {
		members, err := leader.client().ClusterMembers(ctx)
		if err != nil {
			return err
		}
		for _, m := range members {
			if m.Name == "intruder" && m.RaftProbeError != "" {
				reported = m
				return nil
			}
		}
		return fmt.Errorf("intruder not in gossip or not checked yet: %+v", members)
	})
	require.Equal(t, "alive", reported.Status)
	require.Empty(t, reported.Suffrage)
	require.Contains(t, reported.RaftProbeError, "certificate signed by unknown authority")
	require.NotNil(t, reported.RaftProbeFailingSince)
	membersTable := leader.cli("cluster", "members")
	require.Regexp(t, `intruder .* alive .* none .* failed\n`, membersTable)
	require.Contains(t, membersTable, "certificate signed by unknown authority")
	leaderLogs := leader.logs()
	require.Contains(t, leaderLogs, "member failed the Raft connection check")
	require.Regexp(t, `member failed the Raft connection check.*member=intruder`+
		`.*raft_address=\S+.*certificate signed by unknown authority`, leaderLogs)

	// The cluster keeps accepting writes, and none of them reaches the intruder.
	for i := 0; i < 5; i++ {
		leader.cli("bundle", "set", "--id", fmt.Sprintf("org-w%d.test", i), "--path", bundlePath)
	}
	for _, n := range c.nodes {
		st, err := n.client().ClusterRaft(ctx)
		require.NoError(t, err)
		require.Len(t, st.Servers, 3, "node %s: %+v", n.name, st.Servers)
		for _, s := range st.Servers {
			require.NotEqual(t, "intruder", s.ID, "node %s", n.name)
		}
		require.NotContains(t, n.cli("cluster", "raft"), "intruder", "node %s", n.name)
	}
	_, err := intruder.client().Bundle(ctx, "org-secret.test")
	require.Error(t, err, "the intruder must not read replicated state")
	intruderRaft, err := intruder.client().ClusterRaft(ctx)
	require.NoError(t, err)
	require.Zero(t, intruderRaft.CommitIndex, "no log entry reached the intruder")
	require.Contains(t, leader.logs()+c.nodes[1].logs()+c.nodes[2].logs(), "handshake")

	// A node with a certificate of the cluster CA passes the same check, joins and
	// becomes a voter, while the intruder stays out.
	certDir := filepath.Dir(configValue(t, leader, "ca_file"))
	runBundlex(t, "cluster", "tls", "create-cert", "--dir", certDir, "--node", "node-4",
		"--ca", filepath.Join(certDir, "bundlex-cluster-ca.pem"),
		"--ca-key", filepath.Join(certDir, "bundlex-cluster-ca-key.pem"))
	joiner := newNode(t, clusterNodeOptions{trustDomain: "org-c.test", refreshHint: peerHint,
		name: "node-4", clusterYAML: fmt.Sprintf(`  gossip_address: %s
  bootstrap_expect: 0
  join: [%s]
  gossip_key: %s
  server_stabilization_time: 1s
  tls:
    ca_file: %s
    cert_file: %s
    key_file: %s
`, freeAddr(t), strings.Join(join, ", "), gossipKey,
			filepath.Join(certDir, "bundlex-cluster-ca.pem"),
			filepath.Join(certDir, "node-4.pem"), filepath.Join(certDir, "node-4-key.pem"))})
	joiner.launch()
	waitFor(t, time.Minute, "node-4 to become a voter", func() error {
		st, err := c.leader().client().ClusterRaft(ctx)
		if err != nil {
			return err
		}
		suffrages := map[string]string{}
		for _, s := range st.Servers {
			suffrages[s.ID] = s.Suffrage
		}
		if suffrages["node-4"] != "voter" {
			return fmt.Errorf("node-4 is not a voter yet: %v", suffrages)
		}
		if _, ok := suffrages["intruder"]; ok {
			return fmt.Errorf("the intruder entered the Raft configuration: %v", suffrages)
		}
		return nil
	})
	waitFor(t, 30*time.Second, "node-4 to hold the replicated state", func() error {
		_, err := joiner.client().Bundle(ctx, "org-secret.test")
		return err
	})
}

// configValue returns the value of the first line "key: value" in n's
// configuration file.
func configValue(t *testing.T, n *bxNode, key string) string {
	t.Helper()
	data, err := os.ReadFile(n.configPath)
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		if value, ok := strings.CutPrefix(strings.TrimSpace(line), key+": "); ok {
			return value
		}
	}
	t.Fatalf("no %s in the configuration of node %s", key, n.name)
	return ""
}

// gossipAddrs returns the gossip addresses from the members' configurations.
func (c *localCluster) gossipAddrs(t *testing.T) []string {
	var addrs []string
	for _, n := range c.nodes {
		data, err := os.ReadFile(n.configPath)
		require.NoError(t, err)
		for _, line := range strings.Split(string(data), "\n") {
			if addr, ok := strings.CutPrefix(strings.TrimSpace(line), "gossip_address: "); ok {
				addrs = append(addrs, addr)
			}
		}
	}
	return addrs
}

// timedPeer is an https_web bundle endpoint that records when each request came.
type timedPeer struct {
	*fakePeer
	mu    sync.Mutex
	times []time.Time
}

func startTimedPeer(t *testing.T, ca *testCA) *timedPeer {
	p := &timedPeer{fakePeer: startFakePeer(t, ca)}
	inner := p.server.Config.Handler
	p.server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.times = append(p.times, time.Now())
		p.mu.Unlock()
		inner.ServeHTTP(w, r)
	})
	return p
}

func (p *timedPeer) requestTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.times...)
}

func TestLocalClusterFailoverKeepsPolling(t *testing.T) {
	const interval = 3 * time.Second
	c := startLocalCluster(t, "org-c.test", 3, peerHint)
	ca := newTestCA(t, "peer web CA")
	peer := startTimedPeer(t, ca)
	peer.serve(http.StatusOK, bundleDocument(t, "org-p.test", 1, interval, newTestCA(t, "p")))
	leader := c.leader()
	caPath := writeTestFile(t, t.TempDir(), "ca.pem", encodePEM("CERTIFICATE", ca.cert.Raw))
	createWebRelationship(leader, "org-p.test", peer.url(), caPath)
	waitFor(t, time.Minute, "two polls by the first leader", func() error {
		if n := len(peer.requestTimes()); n < 2 {
			return fmt.Errorf("%d requests", n)
		}
		return nil
	})

	killedAt := time.Now()
	leader.kill9()
	newLeader := c.leader()
	elected := time.Since(killedAt)
	require.NotEqual(t, leader.name, newLeader.name)
	t.Logf("new leader %s after %s", newLeader.name, elected)
	waitFor(t, time.Minute, "three polls by the new leader", func() error {
		n := 0
		for _, at := range peer.requestTimes() {
			if at.After(killedAt) {
				n++
			}
		}
		if n < 3 {
			return fmt.Errorf("%d requests after the kill", n)
		}
		return nil
	})

	// No peer goes unpolled for longer than one interval plus the election, and
	// the new leader resumes the schedule instead of fetching in a burst.
	times := peer.requestTimes()
	for i := 1; i < len(times); i++ {
		gap := times[i].Sub(times[i-1])
		require.LessOrEqual(t, gap, interval+elected+2*time.Second,
			"gap before request %d", i)
		require.GreaterOrEqual(t, gap, interval/2, "request %d came in a burst", i)
	}
	rel, err := newLeader.client().Relationship(context.Background(), "org-p.test")
	require.NoError(t, err)
	require.Empty(t, rel.Status.LastError)
}

// socketGet sends a GET to the node's admin socket and returns the response with
// its body read and closed.
func socketGet(t *testing.T, n *bxNode, path string) *http.Response {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", n.socket)
		},
	}, Timeout: 30 * time.Second}
	resp, err := client.Get("http://bundlex" + path)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// insecureEndpointGet fetches the node's bundle endpoint without checking its
// certificate, to read the response headers only.
func insecureEndpointGet(n *bxNode) (*http.Response, error) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Get(n.endpointURL())
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

func TestLocalClusterRetiresKeysOfLeftNode(t *testing.T) {
	// Short key lifetimes so that a departed node's CA expires within the test.
	const authority = `authority:
  ca_ttl: 40s
  jwt_key_ttl: 40s
  x509_svid_max_ttl: 5s
  jwt_svid_max_ttl: 5s
  publish_lead: 6s
`
	c := startLocalCluster(t, "org-c.test", 3, 2*time.Second, authority)
	ctx := context.Background()
	leader := c.leader()
	leaving := c.follower()
	ownKeys := func(n *bxNode) []string {
		svid, err := n.client().MintX509SVID(ctx, admin.MintX509SVIDRequest{
			SPIFFEID: "spiffe://org-c.test/probe"})
		require.NoError(t, err)
		chain := parseCertificates(t, svid.CertsPEM)
		return []string{string(chain[len(chain)-1].AuthorityKeyId)}
	}
	leavingCA := ownKeys(leaving)[0]
	hasCA := func(keyID string) bool {
		local := localBundle(t, leader)
		parsed, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("org-c.test"),
			local.Document)
		require.NoError(t, err)
		for _, ca := range parsed.X509Authorities() {
			if string(ca.SubjectKeyId) == keyID {
				return true
			}
		}
		return false
	}
	require.True(t, hasCA(leavingCA), "every node's CA is in the local bundle")

	leaving.cli("cluster", "leave")
	leftAt := time.Now()
	leaving.stop()
	// The CA stays published while SVIDs it signed may still be valid, and goes
	// once it has expired (SPIFFE Federation 4.1).
	require.True(t, hasCA(leavingCA), "the keys of a node that left stay at first")
	waitFor(t, 2*time.Minute, "the departed node's CA to be retired", func() error {
		if hasCA(leavingCA) {
			return fmt.Errorf("CA still published %s after the leave", time.Since(leftAt))
		}
		return nil
	})
	t.Logf("departed node's CA retired %s after the leave", time.Since(leftAt))
}
