package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClusterRecoverRejectsDamagedDatabase(t *testing.T) {
	dataDir := t.TempDir()
	raftDir := filepath.Join(dataDir, "raft")
	require.NoError(t, os.MkdirAll(raftDir, 0o700))
	dbPath := filepath.Join(raftDir, "raft.db")
	require.NoError(t, os.WriteFile(dbPath, []byte("not a bolt database\n"), 0o600))

	_, stderr, code := runCLI(t, "unused.sock", "", "cluster", "recover", "--data-dir", dataDir,
		"--peer", "node-1=127.0.0.1:8300")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "the Raft database "+dbPath+" is damaged")
	require.Contains(t, stderr, "Move the directory "+raftDir+" aside")
	require.NotContains(t, stderr, "in use")
	require.NoFileExists(t, filepath.Join(raftDir, "peers.json"))
}
