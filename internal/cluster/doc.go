// Package cluster manages the membership of a bundlex server cluster, in the
// manner of Consul and Nomad servers.
//
// Servers find each other by gossip (hashicorp/memberlist). Each one advertises
// its Raft address, RPC address and whether it has Raft state in its gossip
// metadata. With BootstrapExpect N, the server with the lowest name bootstraps
// the cluster once N servers without Raft state see each other. A server with
// Raft state never bootstraps again.
//
// The Raft leader reconciles gossip with the Raft configuration: it adds new
// servers as non-voters and promotes them once they stayed alive and caught up
// for ServerStabilizationTime, updates the address of a server that advertises a
// new one, removes servers that left, and removes servers dead for
// DeadServerGrace unless fewer than MinQuorum voters would remain. A server that
// is alive in gossip is removed only when it announced that it is leaving, so a
// new server that lags while it installs a snapshot stays.
//
// Shutdown stops a server without leaving, so stopping every server and starting
// them again needs no manual step. Leave removes it from the cluster for good.
package cluster
