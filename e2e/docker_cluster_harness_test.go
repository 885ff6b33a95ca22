package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
	"github.com/bundlex/bundlex/internal/clustertls"
)

// Settings of the container cluster tests.
const (
	// clusterRaftPort and clusterGossipPort are the ports inside each container,
	// as the Dockerfile's EXPOSE lists them.
	clusterRaftPort   = 8300
	clusterGossipPort = 8301
	// clusterSocketDir is the directory of the admin socket inside a container.
	// A host directory is bound there, so that the test process calls the admin
	// API directly: a docker exec per request would be too slow for a write load.
	clusterSocketDir = "/run/bundlex"
	// clusterTLSDir contains the cluster CA and the node's certificate and key.
	clusterTLSDir = "/etc/bundlex/tls"
	// clusterRefreshHint is the refresh hint the nodes publish, short so that a
	// federation peer fetches a rotation within seconds.
	clusterRefreshHint = 2 * time.Second
	// clusterWriteTimeout bounds one admin write: a follower waits up to 5s for a
	// leader and the leader up to raft.apply_timeout (10s by default).
	clusterWriteTimeout = 20 * time.Second
	// clusterReadTimeout bounds one admin read of the local state.
	clusterReadTimeout = 5 * time.Second
	// clusterLeaderTimeout bounds the wait for an elected and acknowledged leader.
	clusterLeaderTimeout = time.Minute
	// clusterPollInterval is the pause between two polls of a condition that
	// changes within seconds, such as an election.
	clusterPollInterval = 50 * time.Millisecond
)

// dockerCluster is a Raft cluster of bundlex nodes of one trust domain, each in a
// container on a private network, with mutual TLS for Raft and encrypted gossip.
type dockerCluster struct {
	t           *testing.T
	network     *dockerNetwork
	trustDomain string
	nodes       []*dockerNode
}

// dockerNode is a bundlex node in a container whose admin socket the test
// process reaches through a bound host directory.
type dockerNode struct {
	*container
	// socket is the host path of the node's admin socket.
	socket string
	admin  *admin.Client
}

// dockerNodeSpec is the configuration of one node that the tests vary.
type dockerNodeSpec struct {
	trustDomain string
	name        string
	// join lists gossip addresses; empty for a single node.
	join            []string
	bootstrapExpect int
	gossipKey       string
	// withTLS adds the cluster.tls files that a shared cluster needs.
	withTLS bool
}

// yaml returns the node's configuration file. Every listener binds all
// addresses of the container, and the advertised addresses are its fixed IP,
// because bundlex accepts only an IP address as the advertised gossip address.
func (s dockerNodeSpec) yaml(ip string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `trust_domain: %s
node_name: %s
data_dir: /var/lib/bundlex
log_level: debug
admin:
  socket_path: %s/admin.sock
bundle_endpoint:
  address: 0.0.0.0:%d
  refresh_hint: %s
health:
  address: 0.0.0.0:%d
federation:
  min_refresh: 1s
cluster:
  raft_address: 0.0.0.0:%d
  raft_advertise_address: %s
  gossip_address: 0.0.0.0:%d
  gossip_advertise_address: %s
  bootstrap_expect: %d
  server_stabilization_time: 1s
`, s.trustDomain, s.name, clusterSocketDir, dockerEndpointPort, clusterRefreshHint,
		dockerHealthPort, clusterRaftPort, net.JoinHostPort(ip, fmt.Sprint(clusterRaftPort)),
		clusterGossipPort, net.JoinHostPort(ip, fmt.Sprint(clusterGossipPort)),
		s.bootstrapExpect)
	if len(s.join) > 0 {
		fmt.Fprintf(&b, "  join: [%s]\n", strings.Join(s.join, ", "))
	}
	if s.gossipKey != "" {
		fmt.Fprintf(&b, "  gossip_key: %s\n", s.gossipKey)
	}
	if s.withTLS {
		fmt.Fprintf(&b, "  tls:\n    ca_file: %[1]s/ca.pem\n    cert_file: %[1]s/node.pem\n"+
			"    key_file: %[1]s/node-key.pem\n", clusterTLSDir)
	}
	return b.String()
}

// startDockerCluster starts size nodes of trust domain td that bootstrap one
// cluster together, and waits until every node is ready and a leader counts all
// of them as voters.
func startDockerCluster(t *testing.T, size int, td string) *dockerCluster {
	t.Helper()
	requireDocker(t)
	buildImage(t)
	network := newNetwork(t)
	tlsDir := t.TempDir()
	caCert, caKey, err := clustertls.CreateCA(tlsDir, clustertls.CAOptions{})
	require.NoError(t, err)
	caPEM, err := os.ReadFile(caCert)
	require.NoError(t, err)
	gossipKey := make([]byte, 32)
	_, _ = rand.Read(gossipKey)

	names := make([]string, size)
	gossip := make([]string, size)
	for i := range names {
		names[i] = fmt.Sprintf("node-%d", i+1)
		gossip[i] = net.JoinHostPort(network.IPFor(names[i]), fmt.Sprint(clusterGossipPort))
	}
	c := &dockerCluster{t: t, network: network, trustDomain: td}
	for i, name := range names {
		certPath, keyPath, err := clustertls.CreateNodeCert(tlsDir, clustertls.NodeCertOptions{
			CACertFile: caCert, CAKeyFile: caKey, NodeName: name,
			IPAddresses: []net.IP{net.ParseIP(network.IPFor(name))},
		})
		require.NoError(t, err)
		certPEM, err := os.ReadFile(certPath)
		require.NoError(t, err)
		keyPEM, err := os.ReadFile(keyPath)
		require.NoError(t, err)
		spec := dockerNodeSpec{trustDomain: td, name: name,
			join:            slices.Delete(slices.Clone(gossip), i, i+1),
			bootstrapExpect: size, gossipKey: base64.StdEncoding.EncodeToString(gossipKey),
			withTLS: true}
		c.nodes = append(c.nodes, startDockerNode(t, network, spec, map[string][]byte{
			clusterTLSDir + "/ca.pem":       caPEM,
			clusterTLSDir + "/node.pem":     certPEM,
			clusterTLSDir + "/node-key.pem": keyPEM,
		}))
	}
	start := time.Now()
	for _, n := range c.nodes {
		n.WaitHealthy(dockerReadyTimeout)
	}
	c.waitForVoters(size)
	t.Logf("cluster of %d nodes ready with %d voters %s after the last docker create",
		size, size, time.Since(start).Round(time.Millisecond))
	return c
}

// startDockerNode creates and starts a node from spec with files copied into its
// container. Unlike runNode it binds a host directory at clusterSocketDir.
func startDockerNode(t *testing.T, network *dockerNetwork, spec dockerNodeSpec,
	files map[string][]byte) *dockerNode {
	t.Helper()
	// A short directory under the system temp dir, because a Unix socket path is
	// limited to 107 bytes and t.TempDir() paths carry the test name.
	dir, err := os.MkdirTemp("", "bxdc")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chown(dir, nodeUID, nodeUID))

	c := &container{t: t, network: network, alias: spec.name,
		name: network.name + "-" + spec.name}
	// The CLI and the image's HEALTHCHECK find the socket through this variable.
	socketEnv := "BUNDLEX_ADMIN_SOCKET_PATH=" + clusterSocketDir + "/admin.sock"
	mustDocker(t, "create", "--name", c.name, "--label", dockerLabel,
		"--network", network.name, "--network-alias", spec.name,
		"--ip", network.IPFor(spec.name), "--hostname", spec.name,
		"--volume", dir+":"+clusterSocketDir, "--env", socketEnv, buildImage(t))
	t.Cleanup(c.remove)

	files = maps.Clone(files)
	if files == nil {
		files = map[string][]byte{}
	}
	files[nodeConfigPath] = []byte(spec.yaml(network.IPFor(spec.name)))
	archive, err := tarFiles(files)
	require.NoError(t, err)
	_, _, err = runDocker(dockerCommandTimeout, bytes.NewReader(archive), "cp", "-",
		c.name+":/")
	require.NoError(t, err)
	c.Start()
	socket := filepath.Join(dir, "admin.sock")
	return &dockerNode{container: c, socket: socket,
		admin: admin.NewClient(socket, clusterWriteTimeout)}
}

// raftStatus returns the node's view of the Raft cluster.
func (n *dockerNode) raftStatus() (admin.RaftStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadTimeout)
	defer cancel()
	return n.admin.ClusterRaft(ctx)
}

// waitForLeader waits until a node other than those in excluding is the Raft
// leader and a majority of the cluster, itself included, reports it as leader.
// A partitioned old leader can still call itself leader for a moment, so a
// node's own claim is not enough.
func (c *dockerCluster) waitForLeader(excluding ...*dockerNode) *dockerNode {
	c.t.Helper()
	var found *dockerNode
	waitFor(c.t, clusterLeaderTimeout, "an acknowledged Raft leader", func() error {
		var err error
		found, err = c.findLeader(excluding...)
		return err
	})
	return found
}

// findLeader returns the leader that a majority of the non-excluded nodes report.
func (c *dockerCluster) findLeader(excluding ...*dockerNode) (*dockerNode, error) {
	votes := map[string]int{}
	var states []string
	for _, n := range c.nodes {
		if slices.Contains(excluding, n) {
			continue
		}
		st, err := n.raftStatus()
		if err != nil {
			states = append(states, n.alias+": "+err.Error())
			continue
		}
		states = append(states, fmt.Sprintf("%s: %s, leader %q", n.alias, st.State,
			st.LeaderID))
		if st.LeaderID != "" {
			votes[st.LeaderID]++
		}
	}
	for name, count := range votes {
		leader := c.node(name)
		if count > len(c.nodes)/2 && leader != nil && !slices.Contains(excluding, leader) {
			return leader, nil
		}
	}
	return nil, fmt.Errorf("no leader reported by a majority: %s", strings.Join(states, "; "))
}

// leader returns the current acknowledged leader.
func (c *dockerCluster) leader() *dockerNode {
	c.t.Helper()
	return c.waitForLeader()
}

// followers returns every node except the current leader.
func (c *dockerCluster) followers() []*dockerNode {
	c.t.Helper()
	return c.others(c.leader())
}

// others returns every node except n.
func (c *dockerCluster) others(n *dockerNode) []*dockerNode {
	return slices.DeleteFunc(slices.Clone(c.nodes), func(o *dockerNode) bool { return o == n })
}

// node returns the node called name, or nil.
func (c *dockerCluster) node(name string) *dockerNode {
	for _, n := range c.nodes {
		if n.alias == name {
			return n
		}
	}
	return nil
}

// waitForVoters waits until the leader's Raft configuration has size voters.
func (c *dockerCluster) waitForVoters(size int) {
	c.t.Helper()
	waitFor(c.t, clusterLeaderTimeout, fmt.Sprintf("%d Raft voters", size), func() error {
		leader, err := c.findLeader()
		if err != nil {
			return err
		}
		st, err := leader.raftStatus()
		if err != nil {
			return err
		}
		var voters []string
		for _, s := range st.Servers {
			if s.Suffrage == "voter" {
				voters = append(voters, s.ID)
			}
		}
		if len(voters) != size {
			return fmt.Errorf("leader %s lists voters %v", leader.alias, voters)
		}
		return nil
	})
}

// waitCaughtUp waits until n follows the current leader and has applied every
// entry that the leader had applied when the wait began.
func (c *dockerCluster) waitCaughtUp(n *dockerNode, timeout time.Duration) {
	c.t.Helper()
	leader := c.waitForLeader()
	st, err := leader.raftStatus()
	require.NoError(c.t, err)
	target := st.AppliedIndex
	waitFor(c.t, timeout, fmt.Sprintf("%s to apply index %d", n.alias, target), func() error {
		own, err := n.raftStatus()
		if err != nil {
			return err
		}
		if own.LeaderID == "" || own.AppliedIndex < target {
			return fmt.Errorf("leader %q, applied index %d", own.LeaderID, own.AppliedIndex)
		}
		return nil
	})
}
