package raft

import (
	"os"
	"path/filepath"
	"testing"

	hraft "github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestRecoverSurvivorOfThree(t *testing.T) {
	survivorCfg := clusterNodeConfig(t, "n1", true)
	survivor := openStore(t, survivorCfg)
	waitForLeadership(t, survivor)
	nodes := []*Store{survivor}
	for _, id := range []string{"n2", "n3"} {
		node := openStore(t, clusterNodeConfig(t, id, false))
		addVoter(t, survivor, node)
		nodes = append(nodes, node)
	}
	populate(t, survivor)
	for _, node := range nodes[1:] {
		requireConverged(t, survivor, node)
	}
	before := viewOf(survivor)
	address := survivor.Addr()

	// Losing two of three voters loses the quorum: the survivor alone can never
	// commit again, which is what the recovery file is for.
	for _, node := range nodes {
		require.NoError(t, node.Close())
	}
	require.NoError(t, WriteRecoveryFile(survivorCfg.DataDir, []RecoveryServer{
		{ID: "n1", Address: string(address)},
	}))

	survivorCfg.BindAddr = string(address)
	survivorCfg.Bootstrap = false
	recovered := openStore(t, survivorCfg)
	waitForLeadership(t, recovered)
	require.NoError(t, recovered.Raft().Barrier(waitLimit).Error())
	require.Equal(t, before, viewOf(recovered))
	require.Equal(t, []hraft.Server{{Suffrage: hraft.Voter, ID: "n1", Address: address}},
		configuration(t, recovered))
	mustApply(t, recovered, PutLocalBundle{Record: localRecord(3), PrevSequence: 2})
	local, ok := recovered.LocalBundle()
	require.True(t, ok)
	require.Equal(t, uint64(3), local.Sequence)

	raftDir := filepath.Join(survivorCfg.DataDir, "raft")
	require.NoFileExists(t, filepath.Join(raftDir, RecoveryFileName))
	require.FileExists(t, filepath.Join(raftDir, AppliedRecoveryFileName))

	t.Run("applied file not reused", func(t *testing.T) {
		require.NoError(t, recovered.Close())
		again := openStore(t, survivorCfg)
		waitForLeadership(t, again)
		// A new leader applies the entries after the last snapshot once it commits
		// its first entry, which the barrier waits for.
		require.NoError(t, again.Raft().Barrier(waitLimit).Error())
		local, _ := again.LocalBundle()
		require.Equal(t, uint64(3), local.Sequence)
	})
}

func TestWriteRecoveryFileRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		servers []RecoveryServer
		message string
	}{
		{"empty server list", nil,
			"raft: the recovery configuration of 0 servers has no voter"},
		{"only non-voters", []RecoveryServer{{ID: "n1", Address: "127.0.0.1:1",
			NonVoter: true}}, "raft: the recovery configuration of 1 servers has no voter"},
		{"empty server ID", []RecoveryServer{{Address: "127.0.0.1:1"}},
			"raft: recovery server 0 has an empty ID"},
		{"duplicate server ID", []RecoveryServer{{ID: "n1", Address: "127.0.0.1:1"},
			{ID: "n1", Address: "127.0.0.1:2"}}, `raft: recovery server ID "n1" is listed twice`},
		{"duplicate server address", []RecoveryServer{{ID: "n1", Address: "127.0.0.1:1"},
			{ID: "n2", Address: "127.0.0.1:1"}},
			`raft: recovery address "127.0.0.1:1" is listed twice`},
		{"address without port", []RecoveryServer{{ID: "n1", Address: "127.0.0.1"}},
			`raft: recovery server n1 has the address "127.0.0.1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.ErrorContains(t, WriteRecoveryFile(dir, tc.servers), tc.message)
			require.NoDirExists(t, filepath.Join(dir, "raft"))
		})
	}
}

func TestOpenRejectsBadRecoveryFile(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hasState bool
		content  string
		message  string
	}{
		{"malformed JSON content", true, `[{"id": "n1",`, "raft: read the recovery file"},
		{"file without this node", true, `[{"id": "n9", "address": "127.0.0.1:1"}]`,
			"does not list this node n1"},
		{"node without Raft state", false, `[{"id": "n1", "address": "127.0.0.1:1"}]`,
			"refused to recover cluster with no initial state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := singleNodeConfig(t, "n1", t.TempDir())
			if tc.hasState {
				require.NoError(t, openLeader(t, cfg).Close())
			}
			raftDir := filepath.Join(cfg.DataDir, "raft")
			require.NoError(t, os.MkdirAll(raftDir, 0o700))
			path := filepath.Join(raftDir, RecoveryFileName)
			require.NoError(t, os.WriteFile(path, []byte(tc.content), 0o600))

			cfg.Bootstrap = false
			_, err := Open(cfg)
			require.ErrorContains(t, err, tc.message)
			require.FileExists(t, path, "a rejected recovery file must stay for a retry")
		})
	}
}
