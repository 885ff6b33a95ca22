package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
)

// clusterTLSRequired is the hint when a node that shares its cluster has no
// cluster TLS files.
const clusterTLSRequired = "cluster traffic between nodes must use mutual TLS: " +
	"set cluster.tls.ca_file, cert_file and key_file " +
	"(create them with bundlex cluster tls create-ca and create-cert)"

// gossipKeyHint is the next step after an invalid cluster.gossip_key.
const gossipKeyHint = "use the base64 encoding of 16, 24 or 32 random bytes, " +
	`such as the output of "openssl rand -base64 32"`

func (c *Config) validateCluster() []error {
	var errs []error
	errs = append(errs, c.validateClusterAddresses()...)
	errs = append(errs, c.validateClusterMembership()...)
	errs = append(errs, c.validateGossipKey())
	errs = append(errs, c.validateClusterTLS()...)
	return append(errs, c.validateClusterTimers()...)
}

func (c *Config) validateClusterAddresses() []error {
	k := c.Cluster
	errs := []error{
		checkHostPort("cluster.raft_address", k.RaftAddress, false),
		checkAdvertiseAddress("cluster.raft_advertise_address", k.RaftAdvertiseAddress,
			"cluster.raft_address", k.RaftAddress),
		checkHostPort("cluster.gossip_address", k.GossipAddress, false),
		checkAdvertiseAddress("cluster.gossip_advertise_address", k.GossipAdvertiseAddress,
			"cluster.gossip_address", k.GossipAddress),
	}
	// Raft and memberlist both listen on TCP, so they cannot share a port.
	if listenersOverlap(k.RaftAddress, k.GossipAddress) {
		errs = append(errs, invalid("cluster.gossip_address", k.GossipAddress, fmt.Sprintf(
			"use another port than cluster.raft_address (%s); both listen on TCP",
			k.RaftAddress)))
	}
	return errs
}

// checkAdvertiseAddress checks the address other nodes dial for a listener. An
// empty advertise address means the listen address, which must then be
// dialable itself.
func checkAdvertiseAddress(key, advertise, listenKey, listen string) error {
	if advertise == "" {
		if checkHostPort(listenKey, listen, false) == nil && !isDialable(listen) {
			return missing(key, fmt.Sprintf("%s %q is not an address other nodes can dial; "+
				"set the address they should use", listenKey, listen))
		}
		return nil
	}
	if err := checkHostPort(key, advertise, false); err != nil {
		return err
	}
	if !isDialable(advertise) {
		return invalid(key, advertise, "use an address other nodes can dial, "+
			"not an unspecified or empty host or port 0")
	}
	return nil
}

// isDialable reports whether a valid host:port names one reachable socket: a
// host that is not empty or unspecified (0.0.0.0, ::) and a port other than 0.
func isDialable(address string) bool {
	_, port, err := net.SplitHostPort(address)
	return err == nil && !isUnspecifiedHost(address) && port != "0"
}

// listenersOverlap reports whether two listen addresses take the same TCP
// port on a common interface. Port 0 picks a free port, so it never overlaps.
func listenersOverlap(a, b string) bool {
	hostA, portA, errA := net.SplitHostPort(a)
	hostB, portB, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return false
	}
	numberA, errA := strconv.ParseUint(portA, 10, 16)
	numberB, errB := strconv.ParseUint(portB, 10, 16)
	if errA != nil || errB != nil || numberA == 0 || numberA != numberB {
		return false
	}
	return hostA == hostB || isUnspecifiedHost(a) || isUnspecifiedHost(b)
}

func (c *Config) validateClusterMembership() []error {
	k := c.Cluster
	var errs []error
	seen := map[string]bool{}
	for _, address := range k.Join {
		switch {
		case checkHostPort("cluster.join", address, false) != nil || !isDialable(address):
			errs = append(errs, invalid("cluster.join", address,
				"use the gossip host:port of a server, such as 10.0.0.1:8301"))
		case seen[address]:
			errs = append(errs, invalid("cluster.join", address,
				"listed twice; keep one entry per server"))
		}
		seen[address] = true
	}
	// An even bootstrap_expect is accepted: such a cluster tolerates no more
	// failures than one server fewer, but it works.
	switch {
	case k.BootstrapExpect < 0:
		errs = append(errs, invalid("cluster.bootstrap_expect", k.BootstrapExpect,
			"use 0 to only join, 1 for a single node, or the initial number of servers"))
	case k.BootstrapExpect == 1 && len(k.Join) > 0:
		errs = append(errs, invalid("cluster.bootstrap_expect", k.BootstrapExpect,
			"with cluster.join set, this node would bootstrap a separate single-node "+
				"cluster; set bootstrap_expect to the initial cluster size on every "+
				"initial server, or 0 on a node joining an existing cluster"))
	case k.BootstrapExpect == 0 && len(k.Join) == 0:
		errs = append(errs, missing("cluster.join", "cluster.bootstrap_expect is 0, so "+
			"this node never bootstraps and can only join; list the gossip addresses "+
			"(host:port) of servers in the cluster"))
	}
	return append(errs, c.validateMinQuorum())
}

func (c *Config) validateMinQuorum() error {
	k := c.Cluster
	switch {
	case k.MinQuorum < 0:
		return invalid("cluster.min_quorum", k.MinQuorum,
			"use 0 to derive it from cluster.bootstrap_expect, or a positive count")
	case k.MinQuorum > 0 && k.MinQuorum < MinFaultTolerantQuorum &&
		k.BootstrapExpect >= MinFaultTolerantQuorum:
		return invalid("cluster.min_quorum", k.MinQuorum, fmt.Sprintf(
			"use at least %d because cluster.bootstrap_expect is %d, "+
				"or 0 to derive it from cluster.bootstrap_expect",
			MinFaultTolerantQuorum, k.BootstrapExpect))
	}
	return nil
}

// validateGossipKey checks the key without ever putting it in an error:
// invalid hides the value of cluster.gossip_key.
func (c *Config) validateGossipKey() error {
	text := c.Cluster.GossipKey
	if text == "" {
		return nil
	}
	key, err := decodeGossipKey(text)
	if err != nil {
		return invalid("cluster.gossip_key", text, "not valid base64; "+gossipKeyHint)
	}
	if !validGossipKeyLength(len(key)) {
		return invalid("cluster.gossip_key", text, fmt.Sprintf(
			"decodes to %d bytes; %s", len(key), gossipKeyHint))
	}
	return nil
}

func (c *Config) validateClusterTLS() []error {
	t := c.Cluster.TLS
	if !t.Enabled() {
		if c.Cluster.IsMultiNode() {
			return []error{missing("cluster.tls", clusterTLSRequired)}
		}
		return nil
	}
	files := []struct{ key, path string }{
		{"cluster.tls.ca_file", t.CAFile},
		{"cluster.tls.cert_file", t.CertFile},
		{"cluster.tls.key_file", t.KeyFile},
	}
	var errs []error
	for _, file := range files {
		if file.path == "" {
			errs = append(errs, missing(file.key, "cluster.tls.ca_file, cert_file and "+
				"key_file are used together; set all three or none"))
			continue
		}
		errs = append(errs, checkReadableFile(file.key, file.path))
	}
	return errs
}

// checkReadableFile opens path so that a missing or unreadable file fails at
// start rather than at the first connection. The code that loads the file
// checks its content.
func checkReadableFile(key, path string) error {
	const hint = "check the path and that the node's user may read the file"
	file, err := os.Open(path)
	if err != nil {
		// The path is already in the message, so keep only the reason.
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err
		}
		return invalidWrap(key, path, err, hint)
	}
	defer func() { _ = file.Close() }()
	info, err := file.Stat()
	if err != nil {
		return invalidWrap(key, path, err, hint)
	}
	if info.IsDir() {
		return invalid(key, path, "use a PEM file, not a directory")
	}
	return nil
}

func (c *Config) validateClusterTimers() []error {
	k := c.Cluster
	errs := []error{
		positive("cluster.server_stabilization_time", k.ServerStabilizationTime, "10s"),
		positive("cluster.dead_server_grace", k.DeadServerGrace, "30s"),
		positive("cluster.reconcile_interval", k.ReconcileInterval, "2s"),
	}
	if k.RetryJoinInterval < MinRetryJoinInterval {
		errs = append(errs, invalid("cluster.retry_join_interval", k.RetryJoinInterval,
			fmt.Sprintf("use at least %s, such as 5s", MinRetryJoinInterval)))
	}
	return errs
}
