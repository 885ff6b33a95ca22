package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// exitWait bounds the wait for a node that must fail at start to exit.
const exitWait = time.Minute

// boltUsage returns the page size, the number of pages in use and the root
// bucket's page of the BoltDB file data, from the meta page of the newer
// transaction. The offsets are those of the bbolt v1.3.5 file format.
func boltUsage(t *testing.T, data []byte) (pageSize, pages, root int64) {
	t.Helper()
	read := func(offset int64) uint64 {
		return binary.NativeEndian.Uint64(data[offset : offset+8])
	}
	const metaStart = 16 // after the page header
	pageSize = int64(binary.NativeEndian.Uint32(data[metaStart+8:]))
	require.Positive(t, pageSize)
	best := int64(0)
	if read(pageSize+metaStart+48) > read(metaStart+48) {
		best = pageSize
	}
	return pageSize, int64(read(best + metaStart + 40)), int64(read(best + metaStart + 16))
}

// launchExpectingFailure starts n, waits for it to exit and returns its exit
// code and the log lines it wrote.
func launchExpectingFailure(t *testing.T, n *bxNode) (int, string) {
	t.Helper()
	logged := len(n.logs())
	n.launch()
	select {
	case <-n.exited:
	case <-time.After(exitWait):
		t.Fatalf("node %s still runs %s after its start on a damaged raft.db:\n%s", n.name,
			exitWait, n.logs()[logged:])
	}
	code := n.cmd.ProcessState.ExitCode()
	n.cmd = nil
	return code, n.logs()[logged:]
}

func TestServerExitsOnDamagedRaftDatabase(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, nodeOptions{trustDomain: "org-d.test"})
	bundlePath := n.writeFile("peer.json", []byte(n.cli("bundle", "show")))
	n.cli("bundle", "set", "--id", "org-x.test", "--path", bundlePath)
	snapshot := filepath.Join(n.dir, "backup.snap")
	n.cli("snapshot", "save", snapshot)
	keysBefore := localBundle(t, n)
	n.stop()

	raftDir := filepath.Join(n.dir, "data", "raft")
	dbPath := filepath.Join(raftDir, "raft.db")
	healthy, err := os.ReadFile(dbPath)
	require.NoError(t, err)
	pageSize, pages, root := boltUsage(t, healthy)

	for _, tc := range []struct {
		name   string
		damage func() []byte
		reason string
	}{
		{"truncated to half", func() []byte {
			return healthy[:pages*pageSize/2]
		}, "the file was cut short"},
		{"meta pages random", func() []byte {
			damaged := bytes.Clone(healthy)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range 2 * pageSize {
				damaged[i] = byte(rng.Uint32())
			}
			return damaged
		}, "both meta pages are invalid"},
		{"root page zeroed", func() []byte {
			damaged := bytes.Clone(healthy)
			clear(damaged[root*pageSize : (root+1)*pageSize])
			return damaged
		}, fmt.Sprintf("page %d, referred to by a bucket, records the ID 0", root)},
		{"empty file", func() []byte { return nil }, "the file is empty"},
		{"not a bolt file", func() []byte {
			return bytes.Repeat([]byte("# not a database\n"), 1000)
		}, "both meta pages are invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(dbPath, tc.damage(), 0o600))
			code, logs := launchExpectingFailure(t, n)
			require.Equal(t, 1, code, logs)
			require.Contains(t, logs, "Error: raft: the Raft database "+dbPath+" is damaged")
			require.Contains(t, logs, tc.reason)
			require.Contains(t, logs, "Move the directory "+raftDir+" aside")
			require.NotContains(t, logs, "panic")
		})
	}

	// The advice for a single node works: it starts empty without the raft
	// directory, keeps its keys, and the backup brings the state back.
	require.NoError(t, os.Rename(raftDir, raftDir+".damaged"))
	n.start()
	_, err = n.client().Bundle(ctx, "org-x.test")
	require.Error(t, err, "the new store starts empty")
	n.cli("snapshot", "restore", snapshot)
	_, err = n.client().Bundle(ctx, "org-x.test")
	require.NoError(t, err)
	require.Equal(t, keysBefore.X509Keys, localBundle(t, n).X509Keys)
}

func TestLocalClusterMemberRejoinsAfterDamagedRaftDatabase(t *testing.T) {
	c := startLocalCluster(t, "org-c.test", 3, peerHint)
	ctx := context.Background()
	leader := c.leader()
	bundlePath := leader.writeFile("peer.json", []byte(leader.cli("bundle", "show")))
	leader.cli("bundle", "set", "--id", "org-x.test", "--path", bundlePath)

	member := c.follower()
	member.stop()
	raftDir := filepath.Join(member.dir, "data", "raft")
	dbPath := filepath.Join(raftDir, "raft.db")
	require.NoError(t, os.Truncate(dbPath, 0))
	code, logs := launchExpectingFailure(t, member)
	require.Equal(t, 1, code, logs)
	require.Contains(t, logs, "the Raft database "+dbPath+" is damaged")

	// The advice for a cluster member works: without its raft directory it gets
	// the replicated state back from the leader, including writes made while it
	// was down.
	leader = c.leader()
	leader.cli("bundle", "set", "--id", "org-y.test", "--path", bundlePath)
	require.NoError(t, os.Rename(raftDir, raftDir+".damaged"))
	member.launch()
	for _, td := range []string{"org-x.test", "org-y.test"} {
		waitFor(t, time.Minute, member.name+" to hold "+td, func() error {
			_, err := member.client().Bundle(ctx, td)
			return err
		})
	}
	waitFor(t, time.Minute, member.name+" to stay a voter", func() error {
		st, err := c.leader().client().ClusterRaft(ctx)
		if err != nil {
			return err
		}
		for _, s := range st.Servers {
			if s.ID == member.name && s.Suffrage == "voter" {
				return nil
			}
		}
		return fmt.Errorf("%s is not a voter: %+v", member.name, st.Servers)
	})
}
