package config

import (
	"fmt"
	"net"
	"os"
)

// Settings of a development node, as started by "bundlex server --dev".
const (
	// DevTrustDomain is used when Dev gets an empty name. The .test top-level
	// domain is reserved for testing (RFC 2606), so no public domain uses it.
	DevTrustDomain     = "bundlex.test"
	DevEndpointAddress = "127.0.0.1:8443"
	DevHealthAddress   = "127.0.0.1:8080"
)

// Dev returns a valid single-node configuration for local experiments: a new
// temporary data directory, the bundle endpoint on 127.0.0.1:8443, the built-in
// authority, health on 127.0.0.1:8080, and Raft and gossip each on a free
// loopback port. The node bootstraps a cluster of its own. An empty trustDomain
// means DevTrustDomain. The caller owns the data directory and removes it.
func Dev(trustDomain string) (*Config, error) {
	if trustDomain == "" {
		trustDomain = DevTrustDomain
	}
	if err := checkTrustDomainName("trust_domain", trustDomain); err != nil {
		return nil, err
	}
	raftAddress, err := freeLoopbackAddress("cluster.raft_address", false, "")
	if err != nil {
		return nil, err
	}
	gossipAddress, err := freeLoopbackAddress("cluster.gossip_address", true, raftAddress)
	if err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("", "bundlex-dev-")
	if err != nil {
		return nil, fmt.Errorf("config: create dev data directory: %w: "+
			"check that the temporary directory is writable", err)
	}

	cfg := Default()
	cfg.TrustDomain = trustDomain
	cfg.DataDir = dataDir
	cfg.BundleEndpoint.Address = DevEndpointAddress
	cfg.Authority.Type = AuthorityBuiltin
	cfg.Health.Address = DevHealthAddress
	cfg.Cluster.RaftAddress = raftAddress
	cfg.Cluster.GossipAddress = gossipAddress
	if cfg.NodeName == "" {
		cfg.NodeName = "dev"
	}
	cfg.FillDerived()
	if err := cfg.Validate(); err != nil {
		_ = os.RemoveAll(dataDir)
		return nil, err
	}
	return cfg, nil
}

// freeLoopbackAttempts bounds the search for a port that is free on both TCP
// and UDP. The kernel usually picks another port on each try, so a few suffice.
const freeLoopbackAttempts = 10

// freeLoopbackAddress returns 127.0.0.1 with a free TCP port the kernel chose
// for key, also free on UDP when withUDP is set, as memberlist binds both. It
// never returns excluded, the address already chosen for another key.
// NOTE: the port is released before Raft or gossip binds it, so another process
// can take it in between. The node then fails to start with "address already
// in use".
func freeLoopbackAddress(key string, withUDP bool, excluded string) (string, error) {
	lastErr := fmt.Errorf("the kernel chose %s each time, which is excluded", excluded)
	for range freeLoopbackAttempts {
		address, err := probeLoopbackPort(withUDP)
		if err == nil && address != excluded {
			return address, nil
		}
		if err != nil {
			lastErr = err
		}
	}
	return "", fmt.Errorf("config: find a free loopback port for %s: %w", key, lastErr)
}

// probeLoopbackPort opens a TCP listener on a free loopback port and, with
// withUDP, a UDP socket on the same port, then closes them.
func probeLoopbackPort(withUDP bool) (string, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	address := listener.Addr().String()
	var udpErr error
	if withUDP {
		var conn net.PacketConn
		if conn, udpErr = net.ListenPacket("udp", address); udpErr == nil {
			udpErr = conn.Close()
		}
	}
	if err := listener.Close(); err != nil {
		return "", fmt.Errorf("release TCP port %s: %w", address, err)
	}
	if udpErr != nil {
		return "", fmt.Errorf("probe UDP port %s: %w", address, udpErr)
	}
	return address, nil
}
