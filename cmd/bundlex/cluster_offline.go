package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/spf13/cobra"

	"github.com/bundlex/bundlex/internal/clustertls"
	"github.com/bundlex/bundlex/raft"
)

func newClusterRecoverCommand() *cobra.Command {
	var dataDir string
	var peers []string
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Prepare a stopped node to restart with a new Raft configuration",
		Long: "Recover from lost quorum. Stop every surviving node, run this command on each " +
			"of them with the same --peer list (the survivors only), then start them: at " +
			"start each node replaces its Raft configuration with that list once, and the " +
			"survivors elect a leader among themselves. Writes <data-dir>/raft/peers.json.",
		Example: "  bundlex cluster recover --data-dir /var/lib/bundlex \\\n" +
			"    --peer node-1=10.0.0.1:8300 --peer node-2=10.0.0.2:8300",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				return flagErrorf("--data-dir is required: the data directory of the stopped node")
			}
			if len(peers) == 0 {
				return flagErrorf("--peer is required: give every surviving server as NAME=HOST:PORT")
			}
			servers, err := parsePeers(peers)
			if err != nil {
				return err
			}
			if err := checkNodeStopped(dataDir); err != nil {
				return err
			}
			if err := raft.WriteRecoveryFile(dataDir, servers); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Wrote the recovery configuration with %d "+
				"servers. Start the node now; it applies the configuration once.\n", len(servers))
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory of the stopped node")
	cmd.Flags().StringArrayVar(&peers, "peer", nil,
		"surviving voter as NAME=RAFT_ADDRESS; repeat for each")
	return cmd
}

func parsePeers(peers []string) ([]raft.RecoveryServer, error) {
	var servers []raft.RecoveryServer
	for _, p := range peers {
		name, addr, ok := strings.Cut(p, "=")
		if !ok || name == "" || addr == "" {
			return nil, flagErrorf("--peer %q: use NAME=HOST:PORT, such as node-1=10.0.0.1:8300", p)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, flagErrorf("--peer %q: invalid Raft address %q: %v", p, addr, err)
		}
		if ip := net.ParseIP(host); host == "" || port == "0" || (ip != nil && ip.IsUnspecified()) {
			return nil, flagErrorf("--peer %q: %q is not an address other nodes can dial; "+
				"give the node's cluster.raft_advertise_address", p, addr)
		}
		servers = append(servers, raft.RecoveryServer{ID: name, Address: addr})
	}
	return servers, nil
}

// recoverLockWait is how long recover waits for the Raft database's lock.
const recoverLockWait = time.Second

// checkNodeStopped makes sure dataDir holds Raft data that no running node uses:
// a recovery file written under a running node would apply at its next restart,
// long after the operator's decision, and could split the cluster.
func checkNodeStopped(dataDir string) error {
	dbPath := filepath.Join(dataDir, "raft", "raft.db")
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("no Raft data at %s: %w; pass the data_dir of the stopped node", dbPath, err)
	}
	// A damaged file would fail the next start anyway, so report it before writing
	// a recovery file for it.
	err := raft.CheckDatabase(dataDir, recoverLockWait)
	if errors.Is(err, bolt.ErrTimeout) {
		return fmt.Errorf("the Raft database %s is in use (%v): stop the node first, then run "+
			"cluster recover", dbPath, err)
	}
	return err
}

func newClusterTLSCommand() *cobra.Command {
	return newGroupCommand("tls", "Create the certificates for Raft traffic between nodes",
		newTLSCreateCACommand(),
		newTLSCreateCertCommand(),
	)
}

func newTLSCreateCACommand() *cobra.Command {
	var dir string
	var overwrite bool
	cmd := &cobra.Command{
		Use:   "create-ca",
		Short: "Create the cluster CA certificate and key",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			certPath, keyPath, err := clustertls.CreateCA(dir, clustertls.CAOptions{Overwrite: overwrite})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Created the cluster CA %s and its key %s.\n"+
				"Keep the key offline after creating node certificates.\n", certPath, keyPath)
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".", "directory for the files")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace existing files")
	return cmd
}

func newTLSCreateCertCommand() *cobra.Command {
	var opts clustertls.NodeCertOptions
	var dir string
	var ips []string
	cmd := &cobra.Command{
		Use:   "create-cert",
		Short: "Create a node certificate signed by the cluster CA",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.NodeName == "" {
				return flagErrorf("--node is required: the node_name of the node")
			}
			for _, raw := range ips {
				ip := net.ParseIP(raw)
				if ip == nil {
					return flagErrorf("--ip %q is not an IP address", raw)
				}
				opts.IPAddresses = append(opts.IPAddresses, ip)
			}
			certPath, keyPath, err := clustertls.CreateNodeCert(dir, opts)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Created the certificate %s and key %s "+
				"for node %s.\n", certPath, keyPath, opts.NodeName)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.NodeName, "node", "", "node name the certificate is for")
	f.StringVar(&dir, "dir", ".", "directory for the files")
	f.StringVar(&opts.CACertFile, "ca", clustertls.CACertFileName, "cluster CA certificate file")
	f.StringVar(&opts.CAKeyFile, "ca-key", clustertls.CAKeyFileName, "cluster CA key file")
	f.StringSliceVar(&opts.DNSNames, "dns", nil, "extra DNS names; repeat for more")
	f.StringSliceVar(&ips, "ip", nil, "IP addresses of the node; repeat for more")
	f.BoolVar(&opts.Overwrite, "overwrite", false, "replace existing files")
	return cmd
}
