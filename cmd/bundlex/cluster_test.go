package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/bundlex/bundlex/internal/clustertls"
)

func TestClusterMembersAndRaftTables(t *testing.T) {
	_, socket := startFakeNode(t)
	stdout, stderr, code := runCLI(t, socket, "", "cluster", "members")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "NODE    GOSSIP ADDRESS  STATUS")
	require.Contains(t, stdout, "node-1  10.0.0.1:8301   alive   10.0.0.1:8300  voter     42 "+
		"         -\n")
	require.Contains(t, stdout, "node-4  10.0.0.4:8301   alive   10.0.0.4:8300  none      0  "+
		"         failed\n")
	require.Contains(t, stdout, "The leader does not add these members to the Raft "+
		"configuration, because their Raft address failed its connection check:\n")
	require.Contains(t, stdout, "  node-4 (10.0.0.4:8300), failing since "+
		fakeNow.Add(-time.Minute).UTC().Format(time.RFC3339)+": clustertls: TLS handshake "+
		"with Raft peer 10.0.0.4:8300 failed: x509: certificate signed by unknown authority\n")

	stdout, stderr, code = runCLI(t, socket, "", "--output", "json", "cluster", "members")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, `"raft_probe_error": "clustertls: TLS handshake with Raft peer`)
	require.Contains(t, stdout, `"raft_probe_failing_since": "`)

	stdout, stderr, code = runCLI(t, socket, "", "cluster", "raft")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "Node node-1 is leader, term 3. Leader: node-1.")
	require.Contains(t, stdout, "node-1  10.0.0.1:8300  voter     yes")

	stdout, stderr, code = runCLI(t, socket, "", "--output", "json", "cluster", "raft")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, `"leader_id": "node-1"`)
}

func TestClusterRemoveAndLeave(t *testing.T) {
	_, socket := startFakeNode(t)
	_, stderr, code := runCLI(t, socket, "", "cluster", "remove")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "--node is required")

	stdout, stderr, code := runCLI(t, socket, "", "cluster", "remove", "--node", "node-3")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "Removed server node-3.\n", stdout)

	_, stderr, code = runCLI(t, socket, "", "cluster", "remove", "--node", "node-9")
	require.Equal(t, 1, code)
	require.Equal(t, "Error: server node-9 is not in the Raft configuration\n", stderr)

	stdout, stderr, code = runCLI(t, socket, "", "cluster", "leave")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "The node left the cluster and is stopping.\n", stdout)
}

func TestSnapshotSaveAndRestoreFiles(t *testing.T) {
	_, socket := startFakeNode(t)
	path := filepath.Join(t.TempDir(), "backup.snap")
	stdout, stderr, code := runCLI(t, socket, "", "snapshot", "save", path)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "Saved a snapshot of 19 bytes")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "{\"version\":1}\nstate", string(data))

	stdout, stderr, code = runCLI(t, socket, "", "snapshot", "restore", path)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "Restored the snapshot")

	_, stderr, code = runCLI(t, socket, "", "snapshot", "restore", path+".missing")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "read snapshot file")
}

func TestClusterRecoverWritesPeersFile(t *testing.T) {
	dataDir := t.TempDir()
	_, stderr, code := runCLI(t, "unused.sock", "", "cluster", "recover", "--data-dir", dataDir,
		"--peer", "node-1")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "use NAME=HOST:PORT")
	_, stderr, code = runCLI(t, "unused.sock", "", "cluster", "recover", "--data-dir", dataDir,
		"--peer", "node-1=0.0.0.0:8300")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "is not an address other nodes can dial")

	// Without Raft data the directory is not a node's data_dir.
	_, stderr, code = runCLI(t, "unused.sock", "", "cluster", "recover", "--data-dir", dataDir,
		"--peer", "node-1=127.0.0.1:8300")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no Raft data at")

	// A running node holds its Raft database locked.
	require.NoError(t, os.MkdirAll(filepath.Join(dataDir, "raft"), 0o700))
	db, err := bolt.Open(filepath.Join(dataDir, "raft", "raft.db"), 0o600, nil)
	require.NoError(t, err)
	_, stderr, code = runCLI(t, "unused.sock", "", "cluster", "recover", "--data-dir", dataDir,
		"--peer", "node-1=127.0.0.1:8300")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "stop the node first")
	require.NoFileExists(t, filepath.Join(dataDir, "raft", "peers.json"))
	require.NoError(t, db.Close())

	stdout, stderr, code := runCLI(t, "unused.sock", "", "cluster", "recover", "--data-dir",
		dataDir, "--peer", "node-1=127.0.0.1:8300", "--peer", "node-2=127.0.0.1:9300")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "with 2 servers")
	data, err := os.ReadFile(filepath.Join(dataDir, "raft", "peers.json"))
	require.NoError(t, err)
	require.Contains(t, string(data), `"node-2"`)
	require.Contains(t, string(data), `127.0.0.1:9300`)
}

func TestClusterTLSCreateFiles(t *testing.T) {
	dir := t.TempDir()
	_, stderr, code := runCLI(t, "unused.sock", "", "cluster", "tls", "create-ca", "--dir", dir)
	require.Equal(t, 0, code, stderr)
	_, stderr, code = runCLI(t, "unused.sock", "", "cluster", "tls", "create-ca", "--dir", dir)
	require.Equal(t, 1, code, "an existing CA is never overwritten by default")
	require.NotEmpty(t, stderr)

	_, stderr, code = runCLI(t, "unused.sock", "", "cluster", "tls", "create-cert",
		"--dir", dir, "--node", "node-1", "--ip", "127.0.0.1",
		"--ca", filepath.Join(dir, clustertls.CACertFileName),
		"--ca-key", filepath.Join(dir, clustertls.CAKeyFileName))
	require.Equal(t, 0, code, stderr)
	require.FileExists(t, filepath.Join(dir, "node-1.pem"))
	require.FileExists(t, filepath.Join(dir, "node-1-key.pem"))

	_, stderr, code = runCLI(t, "unused.sock", "", "cluster", "tls", "create-cert",
		"--dir", dir, "--node", "node-2", "--ip", "not-an-ip")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `--ip "not-an-ip" is not an IP address`)
}
