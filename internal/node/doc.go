// Package node runs one bundlex node: the replicated store, the local authority,
// the bundle endpoint, the peer poller (on the Raft leader only), the admin API and
// the health listener. It starts them in dependency order and stops them in
// reverse.
package node
