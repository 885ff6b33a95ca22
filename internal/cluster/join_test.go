package cluster

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
)

func TestNewServerPromotedWhenStable(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))
	writeBundle(t, leader, nodes)

	fourth := newTestNode(t, "n4", 0, nodes[1].gossipAddr())
	fourth.start()
	waitFor(t, "the leader adds n4 as non-voter", func() bool {
		return suffrages(t, leader)["n4"] == SuffrageNonvoter
	})
	all := append(nodes, fourth)
	leader = waitForConfiguration(t, all, voters("n1", "n2", "n3", "n4"))
	writeBundle(t, leader, all)

	added := leader.logRecords("added server as non-voter")
	require.Len(t, added, 1)
	require.Equal(t, "n4", added[0]["member"])
	promoted := leader.logRecords("promoted server to voter")
	require.Len(t, promoted, 1)
	require.Equal(t, "n4", promoted[0]["member"])
	addedAt, err := time.Parse(time.RFC3339Nano, added[0]["time"].(string))
	require.NoError(t, err)
	promotedAt, err := time.Parse(time.RFC3339Nano, promoted[0]["time"].(string))
	require.NoError(t, err)
	require.GreaterOrEqual(t, promotedAt.Sub(addedAt), testStabilization)
	require.Empty(t, fourth.logRecords("bootstrapped the cluster"))
}

func TestUnreachableServerStaysNonvoter(t *testing.T) {
	nodes := startCluster(t, 3, func(node *testNode) { node.cfg.MaxTrailingLogs = 1 })
	leader := waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))
	writeBundle(t, leader, nodes)

	// n4 responds to gossip but advertises a Raft port that no process listens on, as a server
	// stuck in a long snapshot install looks to the leader: alive, never caught up.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, closed.Close())
	lagging := newTestNode(t, "n4", 0, nodes[0].gossipAddr())
	lagging.cfg.RaftAdvertiseAddr = closed.Addr().String()
	lagging.start()
	waitFor(t, "the leader adds n4 as non-voter", func() bool {
		return suffrages(t, leader)["n4"] == SuffrageNonvoter
	})

	window := testDeadGrace + testStabilization + 2*time.Second
	require.Never(t, func() bool { return suffrages(t, leader)["n4"] != SuffrageNonvoter },
		window, 50*time.Millisecond, "n4 must stay a non-voter and stay in the configuration")
	require.Empty(t, leader.logRecords("promoted server to voter"))
	require.Empty(t, leader.logRecords("removed server from the Raft configuration"))
}

func TestGossipKeyMismatchRejected(t *testing.T) {
	clusterKey := bytes.Repeat([]byte{1}, 32)
	nodes := startCluster(t, 3, func(node *testNode) { node.cfg.GossipKey = clusterKey })
	waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))

	for _, tc := range []struct {
		name   string
		key    []byte
		joined bool
	}{
		{"different key rejected", bytes.Repeat([]byte{2}, 32), false},
		{"missing key rejected", nil, false},
		{"shorter different key rejected", bytes.Repeat([]byte{1}, 16), false},
		{"same key accepted", clusterKey, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			joiner := newTestNode(t, "n4", 0, nodes[0].gossipAddr())
			joiner.cfg.GossipKey = tc.key
			joiner.start()
			defer joiner.stop()
			if tc.joined {
				waitFor(t, "n1 sees n4 alive", func() bool {
					return contains(memberNames(nodes[0], StatusAlive), "n4")
				})
				waitFor(t, "n4 sees every server alive", func() bool {
					return len(memberNames(joiner, StatusAlive)) == 4
				})
				return
			}
			waitFor(t, "n4 retried its join", func() bool {
				return len(joiner.logRecords("cannot join the cluster; retrying")) >= 3
			})
			require.Equal(t, []string{"n4"}, memberNames(joiner, StatusAlive))
			for _, node := range nodes {
				require.NotContains(t, memberNames(node, StatusAlive), "n4", "node %s",
					node.name)
			}
		})
	}
}

func contains(names []string, name string) bool {
	for _, candidate := range names {
		if candidate == name {
			return true
		}
	}
	return false
}

// rawMeta is a memberlist delegate that sends fixed metadata.
type rawMeta []byte

func (d rawMeta) NodeMeta(int) []byte               { return d }
func (rawMeta) NotifyMsg([]byte)                    {}
func (rawMeta) GetBroadcasts(int, int) [][]byte     { return nil }
func (rawMeta) LocalState(bool) []byte              { return nil }
func (rawMeta) MergeRemoteState(buf []byte, _ bool) {}

func TestMemberWithBadMetadataIgnored(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := waitForConfiguration(t, nodes, voters("n1", "n2", "n3"))

	// A gossip member that is no bundlex server, such as a misdirected agent,
	// sends metadata without a Raft address.
	conf := memberlist.DefaultLocalConfig()
	conf.Name = "rogue"
	conf.BindAddr, conf.BindPort = "127.0.0.1", 0
	conf.Delegate = rawMeta(`{"rpc_addr":"127.0.0.1:1"}`)
	conf.LogOutput = io.Discard
	rogue, err := memberlist.Create(conf)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rogue.Shutdown() })
	_, err = rogue.Join([]string{leader.gossipAddr()})
	require.NoError(t, err)

	waitFor(t, "the leader sees the rogue member", func() bool {
		return contains(memberNames(leader, StatusAlive), "rogue")
	})
	require.NotEmpty(t, leader.logRecords("gossip member has unusable metadata; it is "+
		"not added to Raft until it sends valid metadata"))
	require.Never(t, func() bool { return len(servers(t, leader)) != 3 },
		10*testInterval, testInterval/2, "the rogue member must not be added to Raft")
	_, ok := leader.manager.RPCAddr("rogue")
	require.False(t, ok)
}
