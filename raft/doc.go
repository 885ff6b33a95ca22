// Package raft is the replicated store of one bundlex node: the local trust domain's
// bundle, the federation relationships, the federated bundles and the fetch status of
// each peer, kept consistent across the cluster by hashicorp/raft.
//
// The log and stable store are one BoltDB file, <data_dir>/raft/raft.db, and snapshots
// are files under <data_dir>/raft/snapshots. Writes go through [Store.Apply] on the
// leader as one [Command] per log entry. Reads come from this node's copy of the state
// machine, so a follower may lag behind the leader by the entries it has not applied
// yet.
//
// The state machine never parses a bundle document: it stores plain records and
// enforces the rules that must hold on every node, such as the compare-and-set on the
// local bundle and the sequence rollback protection of fetched bundles.
package raft
