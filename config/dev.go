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
// authority, health on 127.0.0.1:8080 and Raft on a free loopback port. An
// empty trustDomain means DevTrustDomain. The caller owns the data directory
// and removes it when done.
func Dev(trustDomain string) (*Config, error) {
	if trustDomain == "" {
		trustDomain = DevTrustDomain
	}
	if err := checkTrustDomainName("trust_domain", trustDomain); err != nil {
		return nil, err
	}
	raftAddress, err := freeLoopbackAddress()
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
	cfg.Raft.BindAddress = raftAddress
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

// freeLoopbackAddress returns 127.0.0.1 with a free TCP port the kernel chose.
// NOTE: the port is released before Raft binds it, so another process can take
// it in between; Raft then fails to start with "address already in use".
func freeLoopbackAddress() (string, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("config: find a free loopback port for raft.bind_address: %w", err)
	}
	address := listener.Addr().String()
	if err := listener.Close(); err != nil {
		return "", fmt.Errorf("config: release loopback port %s: %w", address, err)
	}
	return address, nil
}
