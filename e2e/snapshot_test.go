package e2e

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSnapshotRestoreKeepsSequenceGrowing(t *testing.T) {
	node := startNode(t, nodeOptions{trustDomain: "org-a.test", refreshHint: peerHint})
	other := startNode(t, nodeOptions{trustDomain: "org-b.test", refreshHint: peerHint})
	dir := t.TempDir()
	saved := filepath.Join(dir, "org-a.snap")
	node.cli("snapshot", "save", saved)
	node.cli("authority", "rotate")
	published := localBundle(t, node).Sequence

	// Peers reject a lower spiffe_sequence, so the restored bundle is published
	// above the last published sequence.
	node.cli("snapshot", "restore", saved)
	require.Greater(t, localBundle(t, node).Sequence, published)

	// A snapshot of another trust domain is rejected and changes nothing.
	foreign := filepath.Join(dir, "org-b.snap")
	other.cli("snapshot", "save", foreign)
	before := localBundle(t, node)
	_, stderr, err := node.cliResult("snapshot", "restore", foreign)
	require.Error(t, err)
	require.Contains(t, stderr, `the snapshot belongs to trust domain "org-b.test"`)
	after := localBundle(t, node)
	require.Equal(t, before.Sequence, after.Sequence)
	require.JSONEq(t, string(before.Document), string(after.Document))
}
