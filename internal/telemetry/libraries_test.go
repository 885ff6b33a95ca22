package telemetry

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/stretchr/testify/require"
)

// noopFSM is the smallest state machine raft accepts.
type noopFSM struct{}

func (noopFSM) Apply(*raft.Log) any                  { return nil }
func (noopFSM) Snapshot() (raft.FSMSnapshot, error)  { return noopSnapshot{}, nil }
func (noopFSM) Restore(snapshot io.ReadCloser) error { return snapshot.Close() }

type noopSnapshot struct{}

func (noopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (noopSnapshot) Release()                             {}

// findRecord returns the first record from the named logger whose message
// starts with msgPrefix, or nil.
func findRecord(t *testing.T, buf *syncBuffer, name, msgPrefix string) map[string]any {
	t.Helper()
	for _, record := range records(t, buf) {
		msg, _ := record["msg"].(string)
		if record[LoggerNameKey] == name && strings.HasPrefix(msg, msgPrefix) {
			return record
		}
	}
	return nil
}

func TestRaftLogsReachSlog(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelDebug)
	raftLogger := HCLogger(logger, "raft")
	dir := t.TempDir()

	store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	snapshots, err := raft.NewFileSnapshotStoreWithLogger(dir, 1, raftLogger.Named("snapshot"))
	require.NoError(t, err)
	transport, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 3, 10*time.Second,
		raftLogger.Named("net"))
	require.NoError(t, err)

	conf := raft.DefaultConfig()
	conf.LocalID = "node-1"
	conf.Logger = raftLogger
	r, err := raft.NewRaft(conf, noopFSM{}, store, store, snapshots, transport)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Shutdown().Error()) })
	require.NoError(t, r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{
		{ID: conf.LocalID, Address: transport.LocalAddr()},
	}}).Error())

	metrics := NewMetrics()
	require.Eventually(t, func() bool { return r.State() == raft.Leader },
		20*time.Second, 20*time.Millisecond)
	metrics.SetRaftState(r.State())
	require.Equal(t, 2.0, gaugeValue(t, metrics, "bundlex_raft_state"))

	require.Eventually(t, func() bool {
		return findRecord(t, buf, "raft", "entering leader state") != nil
	}, 20*time.Second, 20*time.Millisecond)
	record := findRecord(t, buf, "raft", "entering leader state")
	require.Equal(t, "INFO", record["level"])
	// *raft.Raft is rendered with its String method, not as an empty JSON object.
	require.Contains(t, record["leader"], "Node at 127.0.0.1:")
}

func TestMemberlistLogsReachSlog(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelDebug)
	conf := memberlist.DefaultLocalConfig()
	conf.Name = "node-1"
	conf.BindAddr = "127.0.0.1"
	conf.BindPort = 0
	conf.Logger = StdLogger(logger, "memberlist")

	list, err := memberlist.Create(conf)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, list.Shutdown()) })

	record := findRecord(t, buf, "memberlist", "memberlist: Using dynamic bind port")
	require.NotNil(t, record, buf.String())
	require.Equal(t, "DEBUG", record["level"])
}
