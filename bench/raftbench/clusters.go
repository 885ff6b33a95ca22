package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/bundlex/bundlex/raft"
)

// clusterSize is the number of voters of each benchmark cluster.
const clusterSize = 3

// setupTimeout bounds forming a cluster and waiting for followers to catch up.
const setupTimeout = 60 * time.Second

// bundlexCluster is three raft.Store nodes in this process on loopback TCP, with
// the production defaults of raft.Config.
type bundlexCluster struct {
	nodes []*raft.Store
	dirs  []string
}

func startBundlexCluster(ctx context.Context, root string, relationships int) (
	*bundlexCluster, error) {
	c := &bundlexCluster{}
	for i := range clusterSize {
		dir := filepath.Join(root, fmt.Sprintf("bundlex-n%d", i+1))
		store, err := raft.Open(raft.Config{
			NodeID:    fmt.Sprintf("n%d", i+1),
			DataDir:   dir,
			BindAddr:  "127.0.0.1:0",
			Bootstrap: i == 0,
		})
		if err != nil {
			c.close()
			return nil, fmt.Errorf("raftbench: open bundlex node %d: %w", i+1, err)
		}
		c.nodes = append(c.nodes, store)
		c.dirs = append(c.dirs, dir)
		if i == 0 {
			if err := waitForStoreLeadership(ctx, store); err != nil {
				c.close()
				return nil, err
			}
			continue
		}
		future := c.leader().Raft().AddVoter(hraft.ServerID(fmt.Sprintf("n%d", i+1)),
			store.Addr(), 0, setupTimeout)
		if err := future.Error(); err != nil {
			c.close()
			return nil, fmt.Errorf("raftbench: add bundlex node %d as a voter: %w", i+1, err)
		}
	}
	if err := c.createRelationships(ctx, relationships); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// leader returns the bootstrapped node. The benchmark never changes leadership in
// this cluster, and measure checks that every write succeeds.
func (c *bundlexCluster) leader() *raft.Store { return c.nodes[0] }

// createRelationships creates the relationships that the writers' commands need and
// waits until every follower applied them.
func (c *bundlexCluster) createRelationships(ctx context.Context, count int) error {
	for w := range count {
		cmd := raft.CreateRelationship{Relationship: relationship(trustDomain(w))}
		if err := c.leader().Apply(ctx, cmd); err != nil {
			return fmt.Errorf("raftbench: create the relationship of writer %d: %w", w, err)
		}
	}
	index := c.leader().AppliedIndex()
	for _, follower := range c.nodes[1:] {
		if err := follower.WaitForApplied(ctx, index); err != nil {
			return err
		}
	}
	return nil
}

func (c *bundlexCluster) close() {
	for _, node := range c.nodes {
		_ = node.Close()
	}
}

func waitForStoreLeadership(ctx context.Context, store *raft.Store) error {
	leadership, cancel := store.SubscribeLeadership()
	defer cancel()
	for {
		select {
		case leader, open := <-leadership:
			if !open {
				return errors.New("raftbench: the bundlex store closed before it led")
			}
			if leader {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("raftbench: the bootstrapped bundlex node did not become "+
				"leader: %w", ctx.Err())
		}
	}
}

// rawCluster is three hashicorp/raft nodes built as raft.Open builds its own. They
// have a raft-boltdb/v2 log and stable store behind a log cache, file snapshots,
// TCP transports on loopback and the hashicorp/raft default timeouts, which
// bundlex also uses when its timeouts are zero. Only the FSM differs.
type rawCluster struct {
	nodes  []*hraft.Raft
	bolts  []*raftboltdb.BoltStore
	leader *hraft.Raft
}

func startRawCluster(ctx context.Context, root string, variant rawVariant) (*rawCluster,
	error) {
	c := &rawCluster{}
	fsm := variant.newFSM()
	for i := range clusterSize {
		dir := filepath.Join(root, fmt.Sprintf("%s-n%d", variant.dir, i+1))
		node, transport, err := c.openRawNode(dir, fmt.Sprintf("n%d", i+1), i == 0, fsm)
		if err != nil {
			c.close()
			return nil, err
		}
		c.nodes = append(c.nodes, node)
		if i == 0 {
			c.leader = node
			if err := waitForRawLeadership(ctx, node); err != nil {
				c.close()
				return nil, err
			}
			continue
		}
		future := c.leader.AddVoter(hraft.ServerID(fmt.Sprintf("n%d", i+1)),
			transport.LocalAddr(), 0, setupTimeout)
		if err := future.Error(); err != nil {
			c.close()
			return nil, fmt.Errorf("raftbench: add raw node %d as a voter: %w", i+1, err)
		}
	}
	return c, nil
}

// openRawNode opens one raw node with the settings that raft.Open uses by default.
func (c *rawCluster) openRawNode(dir, id string, bootstrap bool, fsm hraft.FSM) (*hraft.Raft,
	hraft.Transport, error) {
	logger := hclog.NewNullLogger()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("raftbench: create the raw node directory %s: %w", dir, err)
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: raft.DefaultBoltOpenTimeout},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("raftbench: open the raw Raft database in %s: %w", dir, err)
	}
	c.bolts = append(c.bolts, bolt)
	logs, err := hraft.NewLogCache(raft.DefaultLogCacheSize, bolt)
	if err != nil {
		return nil, nil, fmt.Errorf("raftbench: create the raw log cache: %w", err)
	}
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(dir, raft.DefaultSnapshotRetain, logger)
	if err != nil {
		return nil, nil, fmt.Errorf("raftbench: open the raw snapshot store: %w", err)
	}
	transport, err := hraft.NewTCPTransportWithLogger("127.0.0.1:0", nil,
		raft.DefaultTransportMaxPool, raft.DefaultTransportTimeout, logger)
	if err != nil {
		return nil, nil, fmt.Errorf("raftbench: listen for raw Raft traffic: %w", err)
	}
	conf := hraft.DefaultConfig()
	conf.LocalID = hraft.ServerID(id)
	conf.Logger = logger
	if bootstrap {
		membership := hraft.Configuration{Servers: []hraft.Server{{
			Suffrage: hraft.Voter, ID: conf.LocalID, Address: transport.LocalAddr()}}}
		if err := hraft.BootstrapCluster(conf, logs, bolt, snaps, transport,
			membership); err != nil {
			_ = transport.Close()
			return nil, nil, fmt.Errorf("raftbench: bootstrap the raw cluster: %w", err)
		}
	}
	node, err := hraft.NewRaft(conf, fsm, logs, bolt, snaps, transport)
	if err != nil {
		_ = transport.Close()
		return nil, nil, fmt.Errorf("raftbench: start raw Raft node %s: %w", id, err)
	}
	return node, transport, nil
}

func (c *rawCluster) close() {
	for _, node := range c.nodes {
		_ = node.Shutdown().Error()
	}
	for _, bolt := range c.bolts {
		_ = bolt.Close()
	}
}

func waitForRawLeadership(ctx context.Context, node *hraft.Raft) error {
	for node.State() != hraft.Leader {
		select {
		case <-node.LeaderCh():
		case <-ctx.Done():
			return fmt.Errorf("raftbench: the bootstrapped raw node did not become "+
				"leader: %w", ctx.Err())
		}
	}
	return nil
}

// trivialFSM applies every entry without looking at it, so the raw baseline
// measures hashicorp/raft and its stores alone.
type trivialFSM struct{}

func (trivialFSM) Apply(*hraft.Log) any { return nil }

func (trivialFSM) Snapshot() (hraft.FSMSnapshot, error) { return emptySnapshot{}, nil }

func (trivialFSM) Restore(snapshot io.ReadCloser) error {
	defer snapshot.Close()
	_, err := io.Copy(io.Discard, snapshot)
	return err
}

// decodingFSM decodes every entry into its command with raft.DecodeCommand, as the
// bundlex state machine does in raft/codec.go, and keeps nothing. The difference
// to trivialFSM is the cost of that decoding.
type decodingFSM struct{ trivialFSM }

func (decodingFSM) Apply(entry *hraft.Log) any {
	_, err := raft.DecodeCommand(entry.Data)
	return err
}

type emptySnapshot struct{}

func (emptySnapshot) Persist(sink hraft.SnapshotSink) error { return sink.Close() }

func (emptySnapshot) Release() {}
