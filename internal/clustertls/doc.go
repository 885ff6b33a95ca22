// Package clustertls secures Raft traffic between bundlex nodes with mutual TLS.
//
// Every node holds a certificate signed by one cluster CA that only bundlex uses.
// CreateCA and CreateNodeCert write that CA and the node certificates, in the
// manner of `consul tls ca create` and `consul tls cert create`.
//
// StreamLayer implements hashicorp/raft's StreamLayer over TLS 1.3. Both ends must
// present a certificate that chains to the cluster CA and carries the DNS name
// ServerName. Peers are dialed by IP address and port, which change, so the name
// checked is the fixed ServerName instead of the address, as Consul checks
// server.<datacenter>.consul. A process without such a certificate cannot send or
// read any Raft RPC, so it cannot join, vote or read the log.
//
// The layer reads the CA, certificate and key files again every ReloadInterval, so
// certificates rotate without a restart. A new set of files that does not load
// or verify is logged and the last good set stays in use.
package clustertls
